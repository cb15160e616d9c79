"""Files to download: the after-action report (the reviewer page's button), the same report,
policy and place as the `afterActionReport` query, as Excel or Markdown; and the service
ledger of a community and period (the `serviceLedger` query), as Excel or CSV."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from graphql import GraphQLError
from mobilize.api.peacetime import service_ledger
from mobilize.api.relay import expect_global_id
from mobilize.auth.actor import Actor
from mobilize.auth.policy import authorize
from mobilize.auth.scope import in_scope
from mobilize.clock import Clock
from mobilize.errors import InvalidInput
from mobilize.review import report as r
from mobilize.review.export import markdown_with_images, workbook
from mobilize.sheets import csv_text, write_workbook

FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "md": "text/markdown; charset=utf-8",
}


def report_file(
    session: Session, *, actor: Actor, clock: Clock, mobilisation: str, fmt: str, display_tz: str
) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the caller's report of `mobilisation` (a global ID)."""
    authorize(actor, "Query.afterActionReport")
    if fmt not in FORMATS:
        raise InvalidInput("format", f"{fmt!r} is not one of {', '.join(sorted(FORMATS))}")
    try:
        pk = expect_global_id(mobilisation, "Mobilisation", "mobilisation")
    except GraphQLError as exc:  # outside GraphQL: the same words, as bad input
        raise InvalidInput("mobilisation", exc.message) from None
    rep = in_scope(session, r.build, actor=actor, mobilisation_id=pk, now=clock.now())
    tz = ZoneInfo(display_tz)
    if fmt == "md":
        body = markdown_with_images(session, rep, tz).encode("utf-8")
    else:
        buffer = io.BytesIO()
        workbook(rep, tz, buffer)
        body = buffer.getvalue()
    return body, FORMATS[fmt], f"report-{pk}.{fmt}"


LEDGER_FORMATS = {
    "xlsx": FORMATS["xlsx"],
    "csv": "text/csv; charset=utf-8",
}
LEDGER_HEAD = [
    "编号 Code",
    "姓名 Name",
    "社区 Community",
    "时间 Time",
    "来源 Source",
    "事项 What",
    "时长 Hours",
    "积分 Points",
]
SOURCES = {"mobilisation": "战时动员 Mobilisation", "activity": "活动 Activity",
           "redemption": "兑换 Redemption"}  # fmt: skip


def ledger_file(
    session: Session,
    *,
    actor: Actor,
    community: str | None,
    start: datetime | None,
    end: datetime | None,
    fmt: str,
    display_tz: str,
) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the service ledger of `community` (a global ID; the
    caller's whole place when None) from `start` to `end`, with each person's total."""
    authorize(actor, "Query.serviceLedger")
    if fmt not in LEDGER_FORMATS:
        raise InvalidInput("format", f"{fmt!r} is not one of {', '.join(sorted(LEDGER_FORMATS))}")
    try:
        pk = expect_global_id(community, "Community", "community") if community else None
    except GraphQLError as exc:
        raise InvalidInput("community", exc.message) from None
    lines = service_ledger(session, actor, pk, start, end)
    tz = ZoneInfo(display_tz)
    rows = [
        [x.responder_code, x.name, x.community, x.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
         SOURCES[x.source], x.title, x.hours, x.points]
        for x in lines
    ]  # fmt: skip
    totals: dict[tuple[str, str], list[float]] = {}
    for x in lines:
        total = totals.setdefault((x.responder_code, x.name), [0.0, 0.0])
        total[0] += x.hours
        total[1] += x.points
    summary = [
        [code, name, round(h, 2), round(p, 1)] for (code, name), (h, p) in sorted(totals.items())
    ]
    name = f"service-{pk or 'all'}.{fmt}"
    if fmt == "csv":
        return csv_text(LEDGER_HEAD, rows).encode("utf-8"), LEDGER_FORMATS[fmt], name
    buffer = io.BytesIO()
    write_workbook(
        [
            ("明细 Ledger", LEDGER_HEAD, rows),
            ("合计 Totals", ["编号 Code", "姓名 Name", "时长 Hours", "积分余额 Balance"], summary),
        ],
        buffer,
    )
    return buffer.getvalue(), LEDGER_FORMATS[fmt], name
