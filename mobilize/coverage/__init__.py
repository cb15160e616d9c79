"""The three-hour promise, measured: grid states kept as events happen, coverage by scope."""
