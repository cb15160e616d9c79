"""Log lines for people (text, the embedded default) or for machines (one JSON object per
line, production), each carrying the request id of the request that caused it: the API sets
it per request, Celery tasks and in-process jobs carry it on from the request that queued them."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
HEADER = "x-request-id"
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged too.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "request_id"}


def request_id_from(header: str | None) -> str:
    """The caller's id when it is a sane one (a gateway's, a phone's), else a new one."""
    if header and _ACCEPTED.fullmatch(header):
        return header
    return uuid.uuid4().hex


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "process": record.process,
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def configure_logging(style: Literal["text", "json"] = "text", level: int = logging.INFO) -> None:
    """One handler on stderr for the whole process (uvicorn's and Celery's loggers too)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if style == "json" else TextFormatter())
    handler.addFilter(_WithRequestId())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "celery"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
