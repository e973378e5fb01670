"""mlinfra: a data-centric ML platform shipped as one Dagster code location."""
