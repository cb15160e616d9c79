"""Security audit lines: sign-ins, failures, tokens, denials; JSON on logger mobilize.audit."""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger("mobilize.audit")


def audit(event: str, *, actor: str, address: str, **details: Any) -> None:
    """One line per security-relevant moment; never the secret itself."""
    record = {"audit": event, "actor": actor, "address": address, **details}
    logger.info(json.dumps(record, ensure_ascii=False, default=str))
