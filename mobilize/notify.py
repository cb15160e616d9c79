"""Sending messages to people. The embedded default writes them to the server log; the
notifications issue adds WeCom and webhook channels behind the same protocol."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("mobilize.notify")


@dataclass(frozen=True)
class Message:
    to: str  # a phone number, a group, a URL: the channel knows
    kind: str  # e.g. "sign_in_code"
    text: str


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


class LogNotifier:
    """Messages as log lines: what `mobilize demo` shows a newcomer."""

    def send(self, message: Message) -> None:
        logger.info("[%s] to %s: %s", message.kind, message.to, message.text)
