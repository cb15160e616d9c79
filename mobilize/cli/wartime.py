"""`mobilize activate | stand-down | assignments`: the command centre's console."""

from __future__ import annotations

import csv
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.cli.common import (
    DatabaseOption,
    configure_logging,
    edge,
    err,
    out,
    refusals,
    settings_for,
)
from mobilize.clock import SystemClock
from mobilize.db import make_engine, make_sessionmaker
from mobilize.jobs import Dispatcher
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import (
    Assignment,
    Community,
    District,
    Grid,
    JobRun,
    JobStatus,
    Mobilisation,
    MobilisationKind,
    Responder,
    Role,
)
from mobilize.notify import LogNotifier
from mobilize.worker.inprocess import InProcessDispatcher

KindName = typer.Option(help=", ".join(k.value for k in MobilisationKind))


def _console(session: Session, district: str | None) -> Actor:
    """Whoever runs the console acts as the district command centre."""
    stmt = select(District).order_by(District.id)
    if district:
        stmt = stmt.where(District.code == district)
    found = session.scalars(stmt).all()
    if len(found) != 1:
        err.print("[red]Name the district with --district (none or several in the database).[/]")
        raise typer.Exit(2)
    d = found[0]
    return Actor(
        user_id=None,
        name=f"cli:{getpass.getuser()}",
        bindings=(Binding(Role.DISTRICT_COMMANDER, d.id, d.id),),
        address="console",
    )


def _dispatch(database_url: str | None, batches: list[str]) -> None:
    """Hand the committed notifications over, and wait for in-process delivery to finish."""
    settings = settings_for(database_url)
    if not batches:
        return
    if settings.broker_url:
        from mobilize.worker.tasks import CeleryDispatcher  # Celery only where it is used

        dispatcher: Dispatcher = CeleryDispatcher()
        dispatcher.dispatch(batches)
        return
    configure_logging()
    engine = make_engine(settings.database_url)
    local = InProcessDispatcher(engine, LogNotifier(), SystemClock())
    local.dispatch(batches)
    local.wait()
    engine.dispose()


def activate(
    scope: Annotated[str, typer.Option(help="district | street:CODE | community:CODE[,...]")],
    kind: Annotated[str, KindName],
    title: Annotated[str, typer.Option(help="What this mobilisation is for.")],
    target_minutes: int = 180,
    district: Annotated[str | None, typer.Option(help="District code, if several.")] = None,
    client_mutation_id: Annotated[str | None, typer.Option(help="Retry-safe request id.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """平战转换: switch an area to wartime and assign everyone."""
    settings = settings_for(database_url)
    with edge(database_url) as session:
        actor = _console(session, district)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    # The console runs the solve itself, like a worker would (a rerun finds it done).
    with refusals():
        outcome = switch.activate_in_process(
            factory,
            clock=SystemClock(),
            display_tz=settings.display_timezone,
            worker=f"cli:{os.getpid()}",
            actor=actor,
            scope=AreaScope.parse(scope),
            kind=kind,
            title=title,
            target_minutes=target_minutes,
            client_mutation_id=client_mutation_id,
        )
    batches = outcome.batches
    mobilisation = outcome.mobilisation
    with factory() as session:
        summary = {
            "id": mobilisation.id,
            "kind": mobilisation.kind,
            "title": mobilisation.title,
            "status": mobilisation.status,
            "t0": mobilisation.t0.isoformat(),
            "deadline": mobilisation.deadline.isoformat(),
            "replayed": outcome.replayed,
            **mobilisation.figures,
        }
        failed = [
            r.error
            for r in session.scalars(select(JobRun).where(JobRun.id.in_(outcome.jobs)))
            if r.status == JobStatus.FAILED
        ]
    engine.dispose()
    if failed:
        err.print(f"[red]求解失败 The solve failed: {failed[0]}[/]")
        raise typer.Exit(1)
    _dispatch(database_url, batches)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    out.print(
        f"动员 {summary['id']} 已启动 Mobilisation {summary['id']} active until "
        f"{summary['deadline']}"
    )
    for key in (
        "grids",
        "people_called",
        "people_assigned",
        "slots",
        "micro_grids_with_minimum",
        "slots_filled",
        "latest_arrival_minutes",
        "unfilled_minimum",
        "solve_s",
    ):
        out.print(f"  {key}: {summary[key]}")


def stand_down(
    mobilisation_id: int,
    client_mutation_id: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Back to peacetime: release every assignment, record the final state."""
    with edge(database_url) as session:
        found = session.get(Mobilisation, mobilisation_id)
        if found is None:
            err.print(f"[red]No mobilisation {mobilisation_id}[/]")
            raise typer.Exit(2)
        district = session.get(District, found.district_id)
        assert district is not None
        outcome = switch.stand_down(
            session,
            actor=_console(session, district.code),
            clock=SystemClock(),
            mobilisation_id=mobilisation_id,
            client_mutation_id=client_mutation_id,
        )
        final = outcome.mobilisation.final_state or {}
    _dispatch(database_url, outcome.batches)
    if as_json:
        print(json.dumps({"id": mobilisation_id, **final}, ensure_ascii=False))
    else:
        out.print(f"动员 {mobilisation_id} 已转入平时状态 stood down: {final.get('statuses')}")


def assignments(
    mobilisation_id: int,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Who goes where: responder,responder_kind,grid,community,role,source,status."""
    header = ["responder", "responder_kind", "grid", "community", "role", "source", "status"]
    with edge(database_url) as session:
        if session.get(Mobilisation, mobilisation_id) is None:
            err.print(f"[red]No mobilisation {mobilisation_id}[/]")
            raise typer.Exit(2)
        rows = session.execute(
            select(
                Responder.code,
                Responder.kind,
                Grid.code,
                Community.code,
                Assignment.role,
                Assignment.source,
                Assignment.status,
            )
            .join(Responder, Responder.id == Assignment.responder_id)
            .outerjoin(Grid, Grid.id == Assignment.grid_id)
            .join(Community, Community.id == Assignment.community_id)
            .where(Assignment.mobilisation_id == mobilisation_id)
            .order_by(Responder.code)
        ).all()
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    for row in rows:
        out.print("  ".join(str(v) for v in row))


def hours(
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """The service ledger (志愿服务时长与积分), every person's lines oldest first:
    responder,name,community,at,source (mobilisation, activity, redemption),title,hours,points."""
    from mobilize.peacetime.ledger import history

    header = ["responder", "name", "community", "at", "source", "title", "hours", "points"]
    with edge(database_url) as session:
        lines = history(session)
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(
            [x.responder_code, x.name, x.community, x.at.isoformat(), x.source, x.title,
             x.hours, x.points]
            for x in lines
        )  # fmt: skip
        return
    for x in lines:
        out.print(
            f"{x.responder_code} {x.name} {x.source} {x.title}: {x.hours} h, {x.points} points"
        )


def _place(
    session: Session, mobilisation_id: int, street: str | None, community: str | None
) -> dict[str, Any]:
    """What `in_scope` needs: the console's actor for the mobilisation's district, and the
    street and community ids of these codes (None where not given); exits 2 on an unknown
    mobilisation or code."""
    from mobilize.models import Community as CommunityRow
    from mobilize.models import Street as StreetRow

    found = session.get(Mobilisation, mobilisation_id)
    if found is None:
        err.print(f"[red]没有这次动员 No mobilisation {mobilisation_id}[/]")
        raise typer.Exit(2)
    district = session.get(District, found.district_id)
    assert district is not None
    ids: list[int | None] = []
    for model, code, label in (
        (StreetRow, street, "street"),
        (CommunityRow, community, "community"),
    ):
        if code is None:
            ids.append(None)
            continue
        pk = session.scalar(
            select(model.id).where(model.district_id == district.id, model.code == code)
        )
        if pk is None:
            err.print(f"[red]No {label} {code!r} in district {district.code}[/]")
            raise typer.Exit(2)
        ids.append(pk)
    return {
        "actor": _console(session, district.code),
        "mobilisation_id": mobilisation_id,
        "street_id": ids[0],
        "community_id": ids[1],
    }


def report_command(
    mobilisation_id: int,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Directory for report.md, report.xlsx, the pictures "
            "and events.jsonl (created if missing).",
        ),
    ],
    street: Annotated[str | None, typer.Option(help="Only this street (code).")] = None,
    community: Annotated[str | None, typer.Option(help="Only this community (code).")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """After-action report: times to acknowledge and mobilise, the curve, missed grids and
    why, forces planned against forces that came, the timeline of commands."""
    from mobilize.auth.scope import in_scope
    from mobilize.review.export import write_report
    from mobilize.review.report import build

    settings = settings_for(database_url)
    with edge(database_url) as session:
        place = _place(session, mobilisation_id, street, community)
        report = in_scope(session, build, **place, now=SystemClock().now())
        paths = write_report(session, report, out_dir, settings.display_timezone)
    if report.in_progress:
        out.print(
            f"动员 {mobilisation_id} 进行中 in progress: {report.mobilised}/{report.grids} "
            f"micro-grids mobilised so far; {report.events} events"
        )
    else:
        out.print(
            f"动员 {mobilisation_id}: {report.mobilised_by_deadline}/{report.grids} micro-grids "
            f"mobilised by the deadline, {len(report.missed)} missed; {report.events} events"
        )
    for path in paths:
        out.print(f"  {path}")


def coverage_command(
    mobilisation_id: int,
    street: Annotated[str | None, typer.Option(help="Only this street (code).")] = None,
    community: Annotated[str | None, typer.Option(help="Only this community (code).")] = None,
    verify: Annotated[
        bool,
        typer.Option(help="Recount from the raw rows by separate code; exit 1 on mismatch."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """The three-hour promise: grids by status, % mobilised, households checked, time left."""
    from mobilize.auth.scope import in_scope
    from mobilize.coverage.service import coverage
    from mobilize.coverage.verify import recount

    now = SystemClock().now()
    with edge(database_url) as session:
        place = _place(session, mobilisation_id, street, community)
        kept = in_scope(session, coverage, now=now, **place)
        fresh = in_scope(session, recount, now=now, **place) if verify else None
    summary = {
        "mobilisation": mobilisation_id,
        "grids": kept.grids,
        "by_status": kept.by_status,
        "mobilised_pct": kept.mobilised_pct,
        "households": kept.households,
        "households_checked": kept.households_checked,
        "households_checked_pct": kept.households_checked_pct,
        "minutes_left": kept.minutes_left,
        "curve": kept.curve,
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        out.print(
            f"动员 {mobilisation_id}: {kept.mobilised_pct}% of {kept.grids} micro-grids "
            f"mobilised, {kept.households_checked_pct}% of households checked, "
            f"{kept.minutes_left} min left; {kept.by_status}"
        )
    if fresh is not None:
        if fresh.figures() != kept.figures():
            err.print(
                f"[red]Maintained figures disagree with a recount of the raw rows:[/]\n"
                f"  maintained {kept.figures()}\n  recounted  {fresh.figures()}"
            )
            raise typer.Exit(1)
        err.print("verified: maintained figures agree with a recount of the raw rows")
