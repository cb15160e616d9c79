"""Celery: the production way to run background jobs (the embedded default runs them
in-process)."""
