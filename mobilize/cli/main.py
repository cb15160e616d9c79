"""`mobilize`: demo, serve, database migrations, district import and generation, schema export.

Each command is an edge: it owns its transaction and commits once. The commands a newcomer
meets first (demo, serve, import, generate, drill, topology) are kept together here, so `mobilize
--help` and this file read alike; the console of wartime and users have modules of their own."""

from __future__ import annotations

import faulthandler
import json
import signal
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from geo import SUPPORTED_CRS
from mobilize.bundle import BundleInvalid, read_bundle, write_bundle
from mobilize.cli.common import (
    DatabaseOption,
    command_sessions,
    configure_logging,
    err,
    out,
    refusals,
    require_migrated,
    settings_for,
)
from mobilize.cli.progress import RichProgress
from mobilize.cli.users import user_app
from mobilize.cli.wartime import (
    activate,
    assignments,
    coverage_command,
    hours,
    report_command,
    stand_down,
)
from mobilize.clock import Clock, SystemClock
from mobilize.db import make_engine, make_sessionmaker, migrate, normalize_url, transaction
from mobilize.errors import DomainError
from mobilize.settings import Settings, get_settings

if TYPE_CHECKING:  # the generator loads numpy and shapely: only the demo needs them
    from mobilize.generate.history import History

app = typer.Typer(
    help="mobilize: every micro-grid staffed within three hours (平战转换, 网格化动员).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no <bool> after every flag
)
db_app = typer.Typer(help="Database migrations (one history for SQLite and PostGIS).")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.command("activate", short_help="平战转换: switch an area to wartime, assign everyone.")(
    activate
)
app.command("stand-down", short_help="Back to peacetime: release everyone, keep the record.")(
    stand_down
)
app.command("assignments", short_help="Who goes where, as CSV.")(assignments)
app.command("hours", short_help="The service ledger (志愿服务时长与积分), as CSV.")(hours)
app.command("coverage", short_help="The three-hour promise: grids staffed, time left.")(
    coverage_command
)
app.command("report", short_help="The after-action report of a mobilisation.")(report_command)


class PresetName(StrEnum):
    tiny = "tiny"
    street = "street"
    xindu = "xindu"


class CrsName(StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


assert {c.value for c in CrsName} == set(SUPPORTED_CRS)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head", database_url: DatabaseOption = None) -> None:
    """Bring the database schema up to date."""
    engine = make_engine(settings_for(database_url).database_url)
    migrate.upgrade(engine, revision)
    out.print(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: str, database_url: DatabaseOption = None) -> None:
    """Go back to REVISION (`base` removes every table)."""
    engine = make_engine(settings_for(database_url).database_url)
    migrate.downgrade(engine, revision)
    out.print(f"database at revision {migrate.current_revision(engine) or 'base'}")


@db_app.command("current")
def db_current(database_url: DatabaseOption = None) -> None:
    """Print the database's revision."""
    engine = make_engine(settings_for(database_url).database_url)
    out.print(migrate.current_revision(engine) or "base (empty)")


def _print_problems(problems: BundleInvalid) -> None:
    errors = [p for p in problems.problems if not p.warning]
    warnings = [p for p in problems.problems if p.warning]
    for problem in problems.problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    err.print(f"[red]{len(errors)} error(s), {len(warnings)} warning(s): nothing was imported.[/]")


def import_path(path: Path, settings: Settings, *, dry_run: bool = False) -> dict[str, object]:
    """Validate and import a bundle (or, with `dry_run`, only compare it); exits 2 on invalid
    input having written nothing."""
    engine = make_engine(settings.database_url)
    require_migrated(engine)
    from mobilize.districts.importer import import_district

    try:
        with RichProgress(err) as progress:
            bundle = read_bundle(
                path, progress=progress, placement_tolerance_m=settings.placement_tolerance_m
            )
            with transaction(command_sessions(engine, settings)) as session:
                result = import_district(
                    session,
                    bundle=bundle,
                    actor="cli:import",
                    clock=SystemClock(),
                    progress=progress,
                    dry_run=dry_run,
                )
    except BundleInvalid as exc:
        _print_problems(exc)
        raise typer.Exit(2) from None
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    for warning in bundle.warnings:
        err.print(str(warning), markup=False, highlight=False, soft_wrap=True)
    return {
        "district": result.district_code,
        "updated": result.updated,
        "dry_run": dry_run,
        **result.counts,
        "difference": result.difference.as_dict() if result.updated else None,
    }


@app.command("import", short_help="Import a district bundle: all of it, or nothing.")
def import_command(
    path: Annotated[Path, typer.Argument(help="A bundle directory (see README).")],
    database_url: DatabaseOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Only print what would be added, changed and retired; write nothing."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import a district bundle: all of it, or nothing with every problem listed (exit 2).
    Importing a district that exists updates it by code and keeps its history."""
    summary = import_path(path, settings_for(database_url), dry_run=dry_run)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    difference = summary["difference"]
    if isinstance(difference, dict):
        _print_difference(summary["district"], difference, dry_run=dry_run)
        return
    title = "试导入 Would import" if dry_run else "导入完成 Imported"
    table = Table(title=f"{title} district {summary['district']}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        if key not in ("district", "updated", "dry_run", "difference"):
            table.add_row(key, str(value))
    out.print(table)


def _print_difference(
    district: object, difference: dict[str, dict[str, list[str]]], *, dry_run: bool
) -> None:
    """Per kind: added, changed, retired, with the first codes of each."""
    title = "试更新 Would update" if dry_run else "更新完成 Updated"
    table = Table(title=f"{title} district {district}")
    for column in ("kind", "added 新增", "changed 变更", "retired 退出"):
        table.add_column(column)
    for kind, what in difference.items():
        cells = []
        for codes in what.values():
            shown = ", ".join(codes[:5]) + (f" … (+{len(codes) - 5})" if len(codes) > 5 else "")
            cells.append(f"{len(codes)}" + (f": {shown}" if codes else ""))
        table.add_row(kind, *cells)
    out.print(table)
    if dry_run:
        out.print("Nothing was written. 未写入任何数据。")


@app.command(short_help="Write a synthetic district bundle.")
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the bundle to.")],
    preset: PresetName = PresetName.tiny,
    seed: int = 1,
    boundary: Annotated[
        Path | None, typer.Option(help="A real district boundary (GeoJSON) to tessellate.")
    ] = None,
    crs: Annotated[CrsName, typer.Option(help="Coordinate system of --boundary.")] = CrsName.wgs84,
    bundle_crs: Annotated[
        CrsName, typer.Option(help="Coordinate system to write the bundle in.")
    ] = CrsName.wgs84,
    streets: int | None = None,
    communities: int | None = None,
    micro_grids: int | None = None,
    households_per_micro_grid: float | None = None,
    units: int | None = None,
    sunk_cadres: int | None = None,
    micro_grid_members: int | None = None,
    shock_teams: int | None = None,
    volunteer_teams: int | None = None,
    code: Annotated[
        str | None, typer.Option(help="The district's code (e.g. its administrative code).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The district's name, e.g. 武侯区.")] = None,
) -> None:
    """Write a synthetic district bundle; the same preset and seed give the same bundle.
    With --boundary, give the real district's --code and --name too."""
    import dataclasses

    from mobilize.generate import PRESETS, generate_district

    chosen = PRESETS[preset.value].with_counts(
        streets=streets,
        communities=communities,
        micro_grids=micro_grids,
        households_per_micro_grid=households_per_micro_grid,
        units=units,
        sunk_cadres=sunk_cadres,
        micro_grid_members=micro_grid_members,
        shock_teams=shock_teams,
        volunteer_teams=volunteer_teams,
    )
    for option, value in (("--code", code), ("--name", name)):
        if value is not None and not (
            value.strip() and len(value) <= 64 and value == value.strip()
        ):
            err.print(f"[red]{option}: give 1 to 64 characters without spaces around them[/]")
            raise typer.Exit(2)
    chosen = dataclasses.replace(
        chosen,
        district_code=code or chosen.district_code,
        district_name=name or chosen.district_name,
    )
    outline = _read_boundary(boundary, crs.value) if boundary else None
    with RichProgress(err) as progress:
        bundle = generate_district(chosen, seed=seed, boundary=outline, progress=progress)
        progress.step(f"writing {out_dir}")
        write_bundle(bundle, out_dir, crs=bundle_crs.value)
    out.print(json.dumps({"bundle": str(out_dir), **bundle.counts()}, ensure_ascii=False))


def _read_boundary(path: Path, crs: str) -> object:
    from mobilize.generate.boundary import BoundaryError, read_boundary

    try:
        return read_boundary(path, crs)
    except BoundaryError as exc:
        err.print(f"[red]{path}: {exc}[/]")
        raise typer.Exit(2) from None


@app.command(short_help="Serve the API and the pages (GraphiQL at /graphql).")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the API for the configured database (GraphiQL at /graphql)."""
    import os

    import uvicorn

    settings = settings_for(database_url)
    engine = make_engine(settings.database_url)
    require_migrated(engine)
    engine.dispose()
    if database_url:
        os.environ["MOBILIZE_DATABASE_URL"] = database_url
    # Each process configures its own logging in create_app (text or JSON, request ids) and
    # logs one access line per request itself.
    uvicorn.run(
        "mobilize.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # the app believes X-Forwarded-For from trusted proxies only
        # Longer than clients keep idle connections (httpx: 5 s), so the server never closes
        # one just as a client reuses it (the request would fail with a reset).
        timeout_keep_alive=75,
    )


def _demo_history(settings: Settings, code: str, seed: int) -> History:
    """The demo district's year of peacetime (reporting in, leave, activities, points)."""
    from sqlalchemy import select

    from mobilize.generate.history import write_history
    from mobilize.models import District

    engine = make_engine(settings.database_url)
    with transaction(make_sessionmaker(engine)) as session:
        district_id = session.scalars(select(District.id).where(District.code == code)).one()
        lived = write_history(session, district_id=district_id, clock=SystemClock(), seed=seed)
    engine.dispose()
    return lived


@app.command(short_help="A demo district on SQLite, served with its pages.")
def demo(
    preset: PresetName = PresetName.street,
    seed: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Create or reuse a SQLite database with a demo district, then serve GraphiQL."""
    from sqlalchemy import select

    from mobilize.generate import PRESETS, generate_district
    from mobilize.models import District

    settings = settings_for(database_url)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    code = PRESETS[preset.value].district_code
    with transaction(make_sessionmaker(engine)) as session:
        exists = session.scalar(select(District.id).where(District.code == code)) is not None
    engine.dispose()
    if exists:
        out.print(f"Reusing demo district {code} in {settings.database_url}")
    else:
        with tempfile.TemporaryDirectory(prefix="mobilize-demo-") as tmp:
            with RichProgress(err) as progress:
                bundle = generate_district(PRESETS[preset.value], seed=seed, progress=progress)
                write_bundle(bundle, tmp)
            summary = import_path(Path(tmp), settings)
        out.print(f"Imported demo district {code}: {json.dumps(summary, ensure_ascii=False)}")
        lived = _demo_history(settings, code, seed)
        out.print(f"A year of peacetime behind it: {json.dumps(vars(lived), ensure_ascii=False)}")
    tokens = _demo_tokens(settings, code)
    url = f"http://{host}:{port}"
    out.print(f"\n[bold]打开 Open {url}/ui/[/]")
    out.print(f"  指挥中心 Command centre  {url}/ui/command   (paste a commander's token)")
    out.print(f"  手机端 Phone             {url}/ui/phone     (a responder's phone number)")
    out.print(f"  复盘 Review              {url}/ui/review    (the reviewer's token)")
    out.print(f"  GraphiQL                {url}/graphql")
    print("\n演示账号 Demo users: send the header  Authorization: Bearer <token>")
    for role, place, token in tokens:
        print(f"  {role:<20} {place}\n      {token}")
    out.print(
        'Phone sign-in: mutation { requestSignInCode(phone: "<a responder\'s phone>") '
        "{ __typename } }\nThe code appears in this log (mobilize.notify), then "
        "signInWithCode(phone, code)."
    )
    out.print(f"Try:\n{_EXAMPLE_QUERY}")
    if serve_api:
        import uvicorn

        from mobilize.api.app import create_app

        configure_logging()
        uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=False)


def _demo_tokens(settings: Settings, district_code: str) -> list[tuple[str, str, str]]:
    """One user of each role over the demo district (created once), each with its token: the
    one printed last time while it still works, so a restart does not mint six more."""
    from sqlalchemy import select

    from mobilize.auth.actor import SYSTEM
    from mobilize.auth.users import create_user, issue_token, resolve_place
    from mobilize.models import Community, District, Responder, Role, RoleBinding, Street
    from mobilize.models.auth import ROLE_NAMES

    engine = make_engine(settings.database_url)
    clock = SystemClock()
    tokens_file = _demo_tokens_file(settings)
    everyone = _kept_demo_tokens(tokens_file)
    database = normalize_url(settings.database_url).render_as_string(hide_password=True)
    kept = everyone.get(database, {})
    rows = []
    with transaction(make_sessionmaker(engine)) as session:
        district = session.scalars(select(District).where(District.code == district_code)).one()
        street = session.scalars(
            select(Street).where(Street.district_id == district.id).order_by(Street.code)
        ).first()
        community = session.scalars(
            select(Community).where(Community.district_id == district.id).order_by(Community.code)
        ).first()
        member = session.scalars(
            select(Responder)
            .where(Responder.district_id == district.id, Responder.kind == "micro_grid_member")
            .order_by(Responder.code)
        ).first()
        assert street and community and member
        wanted = [
            (Role.DISTRICT_COMMANDER, district.code, district.name),
            (Role.STREET_COMMANDER, street.code, street.name),
            (Role.COMMUNITY_SECRETARY, community.code, community.name),
            (Role.RESPONDER, member.code, f"{member.name} {member.phone}"),
            (Role.REVIEWER, district.code, district.name),
            (Role.ADMIN, district.code, district.name),
        ]
        for role, scope, label in wanted:
            user_id = session.scalar(
                select(RoleBinding.user_id)
                .where(RoleBinding.role == role.value, RoleBinding.scope_code == scope)
                .order_by(RoleBinding.user_id)
                .limit(1)
            )
            if user_id is None:
                place = resolve_place(session, role=role, scope=scope, district=district.code)
                user_id = create_user(
                    session,
                    actor=SYSTEM,
                    clock=clock,
                    name=f"演示 {ROLE_NAMES[role].split(' ')[0]}",
                    places=[place],
                ).id
            secret = kept.get(role.value)
            if secret is None or not _still_valid(session, secret, user_id, clock):
                secret = issue_token(
                    session, actor=SYSTEM, clock=clock, user_id=user_id, label="demo"
                ).secret
            rows.append((role.value, label, secret))
    engine.dispose()
    everyone[database] = {role: secret for role, _, secret in rows}
    _keep_demo_tokens(tokens_file, everyone)
    return rows


def _demo_tokens_file(settings: Settings) -> Path:
    """Where the demo keeps the tokens it printed: beside its SQLite file (else in the working
    directory), readable by its owner alone."""
    url = normalize_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.demo-tokens.json")
    return Path("mobilize-demo-tokens.json")


def _kept_demo_tokens(path: Path) -> dict[str, dict[str, str]]:
    """Every database's kept demo tokens, by its URL (none when the file is missing or
    unreadable)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return kept if isinstance(kept, dict) else {}


def _keep_demo_tokens(path: Path, kept: dict[str, dict[str, str]]) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")


def _still_valid(session: Any, secret: str, user_id: int, clock: Clock) -> bool:
    """A kept token still signs its user in (not revoked, not expired)."""
    from mobilize.auth.users import TokenRejected, authenticate

    try:
        return authenticate(session, secret=secret, clock=clock, address="demo").user_id == user_id
    except TokenRejected:
        return False


_EXAMPLE_QUERY = """  { district { name streets { name communities { name kind } } }
    grids(level: MICRO, first: 3) { totalCount edges { node { code householdCount } } } }"""


@app.command(short_help="Rehearse a wartime morning on simulated time.")
def drill(
    preset: Annotated[
        PresetName | None,
        typer.Option(
            help="Generate this district (default: street, under a minute; xindu, the whole "
            "district, takes about 9 minutes on 2 cores)."
        ),
    ] = None,
    bundle_dir: Annotated[
        Path | None, typer.Option("--bundle", help="Drill this district bundle instead.")
    ] = None,
    seed: int = 1,
    out_dir: Annotated[Path, typer.Option("--out", help="drill.json, coverage.png, drill.db")] = (
        Path("drill")
    ),
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Run on this database (default: OUT/drill.db, reused next time).",
            show_default=False,
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            help="Override a parameter (see drill/defaults.toml); may be repeated.",
        ),
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(
            help="Also run the two baselines: the pairing plan with the system, and manual "
            "practice without it."
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON only.")] = False,
) -> None:
    """Rehearse: switch a whole district to wartime on simulated time and play the morning
    through the real services; beside it the pairing plan with the same system, and manual
    practice without the system, for comparison, and the lower bound no plan can beat."""
    from mobilize.drill.params import DrillParams
    from mobilize.drill.run import drill as run_drill
    from mobilize.generate import PRESETS, generate_district

    if preset is not None and bundle_dir is not None:
        err.print("[red]Give --preset or --bundle, not both[/]")
        raise typer.Exit(2)
    with refusals():
        params = DrillParams.defaults().with_overrides(overrides or [])
    try:
        if bundle_dir is not None:
            bundle = read_bundle(bundle_dir)
        else:
            chosen = PRESETS[(preset or PresetName.street).value]
            bundle = generate_district(chosen, seed=seed)
    except BundleInvalid as exc:
        _print_problems(exc)
        raise typer.Exit(2) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{out_dir / 'drill.db'}"
    with refusals():
        result = run_drill(
            database_url=url,
            bundle=bundle,
            seed=seed,
            params=params,
            out=out_dir,
            display_tz=get_settings().display_timezone,
            baseline=baseline,
            progress=True,
        )
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    out.print(json.dumps(result, ensure_ascii=False, indent=2))
    out.print(f"写入 Wrote {out_dir / 'drill.json'} and {out_dir / 'coverage.png'}")


@app.command(short_help="Export the GraphQL schema to graphql/schema.graphql.")
def schema(
    out_path: Annotated[Path, typer.Option("--out")] = Path("graphql/schema.graphql"),
    check: Annotated[bool, typer.Option(help="Fail if the file differs from the code.")] = False,
) -> None:
    """Export the GraphQL schema (SDL) to graphql/schema.graphql."""
    from mobilize.api.schema import schema_sdl

    sdl = schema_sdl()
    if check:
        current = out_path.read_text(encoding="utf-8") if out_path.exists() else ""
        if current != sdl:
            err.print(f"[red]{out_path} is out of date: run `mobilize schema`[/]")
            raise typer.Exit(1)
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(sdl, encoding="utf-8")
    out.print(f"wrote {out_path}")


@app.command(short_help="Run the production topology from local processes.")
def topology(
    apis: Annotated[int, typer.Option(help="API processes.")] = 2,
    port: Annotated[
        int | None, typer.Option(help="The first API's port; the others follow it.")
    ] = None,
    ports: Annotated[
        str | None, typer.Option(help="Each API's port, comma-separated (e.g. 8001,8002).")
    ] = None,
    logs: Annotated[Path, typer.Option(help="Where each process logs.")] = Path("topology-logs"),
    database_url: DatabaseOption = None,
) -> None:
    """Run the production topology from local processes (no Docker): migrations, API
    processes, a Celery worker, beat and Flower, on MOBILIZE_DATABASE_URL (PostGIS) and
    MOBILIZE_BROKER_URL (Redis). A process that ends is started again, as compose does;
    Ctrl-C (or SIGTERM) stops them all."""
    import time

    from mobilize.topology import Topology

    settings = settings_for(database_url)
    if not settings.database_url.startswith("postgresql") or not settings.broker_url:
        err.print("[red]Needs MOBILIZE_DATABASE_URL=postgresql://... and MOBILIZE_BROKER_URL[/]")
        raise typer.Exit(2)
    chosen = _api_ports(apis, port, ports)
    running = Topology(settings.database_url, settings.broker_url, logs, apis=apis, ports=chosen)
    signal.signal(signal.SIGTERM, _interrupted)  # stopped as by Ctrl-C: the rest stops too
    try:
        running.start()  # inside: a stop asked for while it starts stops what started
        for i in range(apis):
            out.print(f"api-{i}: {running.url(i)}/graphql  metrics: {running.url(i)}/metrics")
        out.print(f"worker metrics: http://127.0.0.1:{running.worker_metrics_port}/metrics")
        out.print(
            f"flower (queues, workers): http://127.0.0.1:{running.flower_port}/  "
            f"user:password {running.flower_auth}"
        )
        out.print(f"logs (JSON) and pids.json in {logs}/; Ctrl-C stops everything")
        told: dict[str, int] = {}
        while True:  # until asked to stop: the topology restarts what ends
            time.sleep(1)
            for name, count in sorted(running.restarts.items()):
                if told.get(name) != count:
                    err.print(f"[yellow]{name} ended and was started again ({count}×)[/]")
                    told[name] = count
    except KeyboardInterrupt:
        err.print("stopping")
    finally:
        running.stop()


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def _api_ports(apis: int, port: int | None, ports: str | None) -> list[int]:
    """The API processes' ports from --port or --ports; none given: free ones."""
    if port is not None and ports is not None:
        err.print("[red]--port or --ports, not both[/]")
        raise typer.Exit(2)
    if ports is not None:
        try:
            chosen = [int(p) for p in ports.split(",") if p.strip()]
        except ValueError:
            err.print(f"[red]--ports {ports!r}: comma-separated port numbers[/]")
            raise typer.Exit(2) from None
        if len(chosen) != apis:
            err.print(f"[red]--ports gives {len(chosen)} ports for {apis} API processes[/]")
            raise typer.Exit(2)
        return chosen
    return [port + i for i in range(apis)] if port is not None else []


def run() -> None:
    """Console-script entry point. `kill -USR1` makes a running command (a server that seems
    hung) write every thread's stack to its stderr, without stopping it."""
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
