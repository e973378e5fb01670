"""The built-in demo, apart from the platform: the card-transactions generator (and its labeling functions)."""
