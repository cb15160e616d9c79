"""The after-action report as a file to download (the reviewer page's button): the same
report, policy and place as the `afterActionReport` query, as Excel or Markdown."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from graphql import GraphQLError
from mobilize.api.relay import expect_global_id
from mobilize.auth.actor import Actor
from mobilize.auth.policy import authorize
from mobilize.auth.scope import in_scope
from mobilize.errors import InvalidInput
from mobilize.review import report as r
from mobilize.review.export import markdown, workbook

FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "md": "text/markdown; charset=utf-8",
}


def report_file(
    session: Session, *, actor: Actor, mobilisation: str, fmt: str, display_tz: str
) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the caller's report of `mobilisation` (a global ID)."""
    authorize(actor, "Query.afterActionReport")
    if fmt not in FORMATS:
        raise InvalidInput("format", f"{fmt!r} is not one of {', '.join(sorted(FORMATS))}")
    try:
        pk = expect_global_id(mobilisation, "Mobilisation", "mobilisation")
    except GraphQLError as exc:  # outside GraphQL: the same words, as bad input
        raise InvalidInput("mobilisation", exc.message) from None
    rep = in_scope(session, r.build, actor=actor, mobilisation_id=pk)
    tz = ZoneInfo(display_tz)
    if fmt == "md":
        body = markdown(rep, tz).encode("utf-8")
    else:
        buffer = io.BytesIO()
        workbook(rep, tz, buffer)
        body = buffer.getvalue()
    return body, FORMATS[fmt], f"report-{pk}.{fmt}"
