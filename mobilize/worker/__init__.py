"""Background work at the edge: what each kind of job runs (`kinds`), threads in the embedded
default (`inprocess`), Celery in production (`app`, `tasks` with its dispatcher). The domain never
imports this package; it returns the batches and runs it queued for one of these to do."""
