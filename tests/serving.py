"""An app served on a real port in a thread, for clients that need a socket (browsers,
WebSocket libraries), stopped again when the test ends."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from mobilize.topology import free_port


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[int]:
    """The port `app` answers on, with its lifespan run, until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
