"""Schema extensions that stand between every request and the resolvers: the policy check on
every root field, the masking of unexpected errors, and what the log keeps of each error."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.permission import BasePermission

from graphql import GraphQLError
from mobilize.auth.audit import audit
from mobilize.auth.policy import authorize
from mobilize.errors import DomainError

logger = logging.getLogger("mobilize.api")


class PolicyGuard(SchemaExtension):
    """Every root field passes `authorize` first: an operation without a policy is refused.
    GraphQL's own meta-fields (`__typename`, and `__schema`/`__type`, which production turns
    off) are not operations: they describe the schema, not the district."""

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if info.path.prev is None and not info.field_name.startswith("__"):
            authorize(info.context.actor, f"{info.parent_type.name}.{info.field_name}")
        return _next(root, info, *args, **kwargs)


class SubscriptionPolicy(BasePermission):
    """The same check for a subscription, as it starts: `PolicyGuard`'s hook sees only each
    event, after the stream has begun reading, so a refused caller would meet the stream's
    own errors first (or a refusal per event)."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        authorize(info.context.actor, f"Subscription.{info.field_name}")
        return True


def _unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | DomainError)


class ErrorMasking(MaskErrors):
    """Clients get an error id for a bug, the log gets the traceback; refusals keep their words
    and say their kind in `extensions.code`."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        ref = uuid.uuid4().hex[:12]
        original = error.original_error
        assert original is not None
        logger.error(
            "unexpected error %s at %s",
            ref,
            error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            f"内部错误 Internal error; reference {ref}",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL", "errorId": ref},
        )

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in super()._process_errors(errors):
            original = error.original_error
            if isinstance(original, DomainError):
                error = GraphQLError(
                    original.message,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions={"code": original.code},
                )
            processed.append(error)
        return processed


def log_errors(errors: list[GraphQLError], context: Any) -> None:
    """What the log keeps of a request's errors, before they are masked for the client.

    A bug is logged by `ErrorMasking` with its traceback and reference. A refusal is one
    audit line (written where it was decided, or here), never an ERROR. A client's own
    mistake (syntax, validation, a malformed ID) is one short line: an anonymous 1 MB syntax
    error must not write 1 MB to the log."""
    for error in errors:
        original = error.original_error
        if original is not None and not isinstance(original, GraphQLError | DomainError):
            continue  # ErrorMasking logs it
        if isinstance(original, DomainError):
            if original.code in ("FORBIDDEN", "UNAUTHENTICATED") and not original.audited:
                actor = getattr(context, "actor", None)
                audit(
                    "access.denied",
                    actor=actor.label if actor else "unknown",
                    address=actor.address if actor else "",
                    path=".".join(str(p) for p in error.path or ()),
                    reason=original.message[:200],
                )
            continue
        logger.info("request refused: %s", _short(error.message))


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
