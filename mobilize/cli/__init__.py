"""The `mobilize` command."""
