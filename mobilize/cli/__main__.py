"""`python -m mobilize.cli`, the same as the `mobilize` command."""

from mobilize.cli.main import run

run()
