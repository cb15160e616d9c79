"""Errors the domain raises on purpose; the API turns each into a typed result or a clear
GraphQL error. Anything else is a bug, masked from clients and logged with an error id."""

from __future__ import annotations


class DomainError(Exception):
    """An expected refusal; its message is safe to show (Chinese first, English second)."""

    code = "DOMAIN_ERROR"
    audited = False  # a denial already written to the audit log where it was decided

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "INVALID_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class Forbidden(DomainError):
    code = "FORBIDDEN"

    def __init__(self, operation: str) -> None:
        super().__init__(f"无权执行 Not allowed: {operation}")
        self.operation = operation


class NotFound(DomainError):
    code = "NOT_FOUND"


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after_s: int, what: str) -> None:
        super().__init__(f"请求过于频繁 Too many attempts ({what}); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class InvalidCode(DomainError):
    code = "INVALID_CODE"

    def __init__(self, attempts_left: int) -> None:
        super().__init__(
            "验证码错误或已过期 The code is wrong or has expired"
            + (f" ({attempts_left} tries left)" if attempts_left else "; request a new one")
        )
        self.attempts_left = attempts_left


class SignedOut(DomainError):
    """The token a long-lived connection was opened with no longer opens the door."""

    code = "UNAUTHENTICATED"

    def __init__(self, reason: str) -> None:
        super().__init__(f"登录已失效 Signed out: {reason}")
        self.reason = reason
