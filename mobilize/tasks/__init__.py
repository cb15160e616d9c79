"""Tasks: generated at activation, dispatched by command centres, worked from phones."""
