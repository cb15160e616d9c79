"""Sending messages to people and command centres, through channels.

The log channel takes everything (what `mobilize demo` shows a newcomer). A WeCom group robot
(企业微信群机器人) takes what is addressed to a command centre (`street:CODE`,
`district:CODE`): escalations and deadline reports land in the centre's group chat. A generic
JSON webhook takes everything, for a district's SMS gateway or its own systems; each request
carries an idempotency key (delivery is at least once) and, with a secret, an HMAC signature.
A channel that fails raises; the outbox retries it with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx

from mobilize.markup import wecom_text
from mobilize.settings import Settings

logger = logging.getLogger("mobilize.notify")

KIND_TITLES = {
    "assignment": "任务分配 Assignment",
    "escalation": "到岗预警 Escalation",
    "deadline": "时限报告 Deadline report",
    "sign_in_code": "登录验证码 Sign-in code",
}
COMMAND_PREFIXES = ("street:", "district:")


@dataclass(frozen=True)
class Message:
    to: str  # a phone number, or a command centre: "street:CODE", "district:CODE"
    kind: str  # e.g. "sign_in_code"
    text: str


class DeliveryFailed(Exception):
    """A channel did not accept a message; the text says why, for the outbox row."""


class Channel(Protocol):
    name: str

    def accepts(self, message: Message) -> bool: ...

    def send(self, message: Message, *, key: str) -> None:
        """Deliver or raise; `key` is the same on every retry of one message."""
        ...


class LogChannel:
    name = "log"

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str) -> None:
        logger.info("[%s] to %s: %s", message.kind, message.to, message.text)


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")
    return response


def _clip(text: str, max_bytes: int) -> str:
    """WeCom measures content in UTF-8 bytes; cut at a character boundary."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode(errors="ignore") + "…"


class WeComRobot:
    """A WeCom group robot's webhook (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=`).
    It answers HTTP 200 with `errcode` 0 on success; anything else is a failure (45009 is
    its rate limit of 20 messages a minute)."""

    name = "wecom"

    def __init__(
        self, url: str, *, style: Literal["text", "markdown"] = "markdown", timeout_s: float = 5.0
    ) -> None:
        self.url = url
        self.style = style
        self._client = httpx.Client(timeout=timeout_s)

    def accepts(self, message: Message) -> bool:
        return message.to.startswith(COMMAND_PREFIXES)

    def payload(self, message: Message) -> dict[str, object]:
        if self.style == "text":
            text = message.text.replace("://", "：//")  # no link made from what people wrote
            return {"msgtype": "text", "text": {"content": _clip(text, 2048)}}
        title = KIND_TITLES.get(message.kind, message.kind)
        colour = "warning" if message.kind in ("escalation", "deadline") else "info"
        content = f'**<font color="{colour}">{title}</font>**\n> {wecom_text(message.text)}'
        return {"msgtype": "markdown", "markdown": {"content": _clip(content, 4096)}}

    def send(self, message: Message, *, key: str) -> None:
        body = json.dumps(self.payload(message), ensure_ascii=False).encode()
        response = _post(self._client, self.url, body, {"Content-Type": "application/json"})
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed(f"not JSON: {response.text[:200]}") from None
        if answer.get("errcode") != 0:
            raise DeliveryFailed(f"errcode {answer.get('errcode')}: {answer.get('errmsg')}")


class JsonWebhook:
    """POSTs `{"id", "kind", "to", "text"}`; any 2xx is success. With a secret, the header
    `X-Mobilize-Signature: sha256=<hex HMAC of the body>` lets the receiver check the sender."""

    name = "webhook"

    def __init__(self, url: str, *, secret: str | None = None, timeout_s: float = 5.0) -> None:
        self.url = url
        self._secret = secret
        self._client = httpx.Client(timeout=timeout_s)

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str) -> None:
        body = json.dumps(
            {"id": key, "kind": message.kind, "to": message.to, "text": message.text},
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self._secret:
            digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Mobilize-Signature"] = f"sha256={digest}"
        _post(self._client, self.url, body, headers)


class Notifier:
    """The channels a deployment has; a message goes to every channel that accepts it."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channels = list(channels)

    def send(self, message: Message, *, key: str = "direct") -> None:
        """Send now through every accepting channel (for what must not be stored, like
        sign-in codes); raises after trying them all if any failed."""
        failures = []
        for channel in self.channels:
            if channel.accepts(message):
                try:
                    channel.send(message, key=key)
                except Exception as exc:
                    failures.append(f"{channel.name}: {exc}")
        if failures:
            raise DeliveryFailed("; ".join(failures))


class LogNotifier(Notifier):
    """The log channel alone: the embedded default."""

    def __init__(self) -> None:
        super().__init__([LogChannel()])


def notifier_from_settings(settings: Settings) -> Notifier:
    """Log, plus WeCom and the webhook when their URLs are configured."""
    channels: list[Channel] = [LogChannel()]
    if settings.notify_wecom_url:
        channels.append(WeComRobot(settings.notify_wecom_url, style=settings.notify_wecom_style))
    if settings.notify_webhook_url:
        secret = settings.notify_webhook_secret
        channels.append(
            JsonWebhook(
                settings.notify_webhook_url,
                secret=secret.get_secret_value() if secret is not None else None,
            )
        )
    return Notifier(channels)
