"""Serving the registered model over HTTP (`mlinfra serve`): the alias's version, reloaded when
the alias moves, each request logged to `monitoring.served_requests`."""
