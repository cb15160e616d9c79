"""After the emergency: replay any instant, review what happened and why."""
