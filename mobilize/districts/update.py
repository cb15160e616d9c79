"""Importing a bundle over a district that exists: an update by code that keeps history.

New objects are added, changed ones changed in place (their ids stay, so role bindings,
assignments, records and events keep pointing at them), and objects the bundle no longer has
are retired: kept, marked with when they left. A retired object that comes back is the same
row again. What is set through the API and not in a bundle (availability, bindings) is never
touched. During a live mobilisation only changes that leave its area's structure alone land."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from mobilize.bundle.model import Bundle
from mobilize.db.bulk import insert_rows, refresh_statistics
from mobilize.db.engine import is_postgres
from mobilize.db.one_of import one_of
from mobilize.db.types import Geometry, parse_all, unparsed
from mobilize.districts.households import write_households
from mobilize.errors import DomainError
from mobilize.models import (
    LIVE,
    Assignment,
    Building,
    Community,
    District,
    Grid,
    GridLevel,
    Household,
    Mobilisation,
    MobilisationArea,
    Pairing,
    Responder,
    Street,
    Team,
    Unit,
)
from mobilize.models.base import Origin, Retirable, table_of
from mobilize.progress import NoProgress, Progress

KINDS = (
    "streets",
    "communities",
    "grids",
    "buildings",
    "households",
    "units",
    "pairings",
    "teams",
    "responders",
)
_COORDINATE_TOLERANCE = 1e-9  # degrees: what a write and a read give back, not a move


@dataclass
class KindDifference:
    added: list[str] = field(default_factory=list)  # new codes, and retired codes come back
    changed: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "changed": self.changed, "retired": self.retired}

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.retired)


@dataclass
class Difference:
    """What an import adds, changes and retires, per kind, by code (pairings by
    `unit/community`)."""

    kinds: dict[str, KindDifference] = field(
        default_factory=lambda: {k: KindDifference() for k in KINDS}
    )

    def as_dict(self) -> dict[str, dict[str, list[str]]]:
        return {kind: diff.as_dict() for kind, diff in self.kinds.items()}

    def __bool__(self) -> bool:
        return any(self.kinds.values())


class DistrictInWartime(DomainError):
    code = "DISTRICT_IN_WARTIME"

    def __init__(self, mobilisation_id: int, title: str, what: list[str]) -> None:
        shown = ", ".join(what[:10]) + (f" and {len(what) - 10} more" if len(what) > 10 else "")
        super().__init__(
            f"战时状态下不能改变动员区域的结构 Mobilisation {mobilisation_id} “{title}” is live "
            f"over what this update changes ({shown}); stand it down first, or leave its area's "
            "streets, communities, grids and households as they are"
        )
        self.mobilisation_id = mobilisation_id


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, shapely.Geometry) or isinstance(b, shapely.Geometry):
        return a is not None and b is not None and a.equals_exact(b, _COORDINATE_TOLERANCE)
    return bool(a == b)


@dataclass
class _Plan:
    """One coded kind's rows to write: inserts, updates by id, retirements by id."""

    model: type[Retirable]
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    retire: list[int] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # code -> id, of what stays or comes back


def _origin_of(model: Any) -> set[str]:
    return {"origin"} if hasattr(model, "origin") else set()


def _plan_coded(
    session: Session,
    model: Any,
    district_id: int,
    desired: Mapping[str, dict[str, Any]],
    diff: KindDifference,
) -> _Plan:
    """Compare the bundle's rows of one kind (code -> column values) with the stored ones."""
    columns = sorted({c for values in desired.values() for c in values} | _origin_of(model))
    shapes = [c for c in columns if isinstance(getattr(model, c).type, Geometry)]
    plan = _Plan(model)
    rows = session.execute(
        select(
            model.id,
            model.code,
            model.retired_at,
            *(unparsed(getattr(model, c)) if c in shapes else getattr(model, c) for c in columns),
        ).where(model.district_id == district_id)
    ).all()
    # Geometry parsed a column at a time: one call for ten thousand polygons, not one each.
    parsed = {c: parse_all([getattr(r, c) for r in rows]) for c in shapes}
    stored = {row.code: (k, row) for k, row in enumerate(rows)}

    def value(k: int, row: Any, column: str) -> Any:
        return parsed[column][k] if column in parsed else getattr(row, column)

    for code, values in desired.items():
        found = stored.get(code)
        if found is None:
            plan.inserts.append({"district_id": district_id, "code": code, **values})
            diff.added.append(code)
            continue
        k, row = found
        plan.ids[code] = row.id
        moved = {c: v for c, v in values.items() if not _same(value(k, row, c), v)}
        if row.retired_at is not None:
            plan.updates.append({"id": row.id, "retired_at": None, **values})
            diff.added.append(code)
        elif moved:
            plan.updates.append({"id": row.id, **moved})
            diff.changed.append(code)
    for code, (_, row) in stored.items():
        if code not in desired and row.retired_at is None and _kept_by_bundles(row):
            plan.retire.append(row.id)
            diff.retired.append(code)
    return plan


def _kept_by_bundles(row: Any) -> bool:
    """Whether an import that leaves this row out retires it: not one added through the API."""
    return getattr(row, "origin", Origin.BUNDLE) == Origin.BUNDLE


def _apply(session: Session, plan: _Plan, now: datetime) -> dict[str, int]:
    """Write a plan; code -> id of every current row of its kind."""
    model: Any = plan.model
    ids = dict(plan.ids)
    if plan.inserts:
        # Written in bulk without RETURNING, then their ids read by code (unique in a
        # district): the ORM's insert with ids in the order given cost an INSERT a row on
        # SQLite, and a geometry bound through two libraries a row on PostgreSQL.
        insert_rows(session, table_of(model), plan.inserts)
        codes = [row["code"] for row in plan.inserts]
        district_id = plan.inserts[0]["district_id"]
        found = session.execute(
            select(model.code, model.id).where(
                model.district_id == district_id, one_of(model.code, codes)
            )
        )
        ids.update({code: pk for code, pk in found})
    _update_by_id(session, model, plan.updates)
    _retire(session, model, plan.retire, now)
    return ids


def _update_by_id(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """One Core executemany by primary key per set of columns changed (the ORM's bulk update
    cost more than the writing)."""
    table = table_of(model)
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in rows:
        by_shape.setdefault(tuple(sorted(k for k in values if k != "id")), []).append(values)
    for columns, same in by_shape.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        session.execute(
            statement,
            [{"row_id": v["id"], **{f"v_{c}": v[c] for c in columns}} for v in same],
        )


def _points(places: Sequence[tuple[float | None, float | None]]) -> list[Any]:
    """Points made in one call (one at a time, tens of thousands cost most of a second);
    None where a place has no coordinates."""
    xy = np.asarray([(np.nan, np.nan) if x is None else (x, y) for x, y in places], dtype=float)
    made = shapely.points(xy) if len(xy) else []
    return [None if x is None else point for (x, _), point in zip(places, made, strict=True)]


def _retire(session: Session, model: Any, ids: Sequence[int], now: datetime) -> None:
    session.execute(update(model).where(one_of(model.id, ids)).values(retired_at=now))


def plan_update(
    session: Session,
    district: District,
    bundle: Bundle,
    now: datetime,
    *,
    write: bool,
    progress: Progress | None = None,
) -> tuple[Difference, list[str]]:
    """The difference between the stored district and `bundle`, and the households that move;
    with `write`, applied."""
    diff = Difference()
    did = district.id
    if write:
        district.name = bundle.district_name
        district.geom = bundle.district_geom
        district.source_crs = bundle.source_crs
        district.imported_at = now

    def sync(kind: str, model: Any, desired: Mapping[str, dict[str, Any]]) -> dict[str, int]:
        plan = _plan_coded(session, model, did, desired, diff.kinds[kind])
        if not write:  # a dry run: codes not yet written have no id; later kinds look them up
            return {**plan.ids, **{row["code"]: -1 for row in plan.inserts}}
        return _apply(session, plan, now)

    streets = sync(
        "streets", Street, {s.code: {"name": s.name, "geom": s.geom} for s in bundle.streets}
    )
    communities = sync(
        "communities",
        Community,
        {
            c.code: {
                "street_id": streets[c.street],
                "name": c.name,
                "kind": c.kind,
                "secretary_code": c.secretary,
                "geom": c.geom,
            }
            for c in bundle.communities
        },
    )
    per_micro: dict[str, int] = {}
    for code in bundle.households.micro_grid:
        per_micro[code] = per_micro.get(code, 0) + 1
    general = [g for g in bundle.grids if g.level == GridLevel.GENERAL]
    micro = [g for g in bundle.grids if g.level == GridLevel.MICRO]
    community_of = {g.code: g.parent for g in general}
    community_of.update({g.code: community_of[g.parent] for g in micro})
    per_general: dict[str, int] = {}
    for g in micro:
        per_general[g.parent] = per_general.get(g.parent, 0) + per_micro.get(g.code, 0)
    # What follows from a grid's polygon and households: a point inside it, the count.
    centres = dict(
        zip(
            [g.code for g in bundle.grids],
            shapely.point_on_surface([g.geom for g in bundle.grids]).tolist(),
            strict=True,
        )
    )
    grid_plan_general = {
        g.code: {
            "community_id": communities[community_of[g.code]],
            "parent_id": None,
            "level": GridLevel.GENERAL.value,
            "name": g.name,
            "geom": g.geom,
            "centre": centres[g.code],
            "household_count": per_general.get(g.code, 0),
        }
        for g in general
    }
    general_ids = sync("grids", Grid, {**grid_plan_general, **_stored_micro(session, did)})
    grid_plan_micro = {
        g.code: {
            "community_id": communities[community_of[g.code]],
            "parent_id": general_ids[g.parent],
            "level": GridLevel.MICRO.value,
            "name": g.name,
            "geom": g.geom,
            "centre": centres[g.code],
            "household_count": per_micro.get(g.code, 0),
        }
        for g in micro
    }
    grids = sync("grids", Grid, {**grid_plan_general, **grid_plan_micro})
    # The general grids were compared twice; keep each code once in the difference.
    _dedupe(diff.kinds["grids"])

    building_points = _points([(b.lon, b.lat) for b in bundle.buildings])
    buildings = sync(
        "buildings",
        Building,
        {
            b.code: {
                "micro_grid_id": grids[b.micro_grid],
                "name": b.name,
                "address": b.address,
                "floors": b.floors,
                "geom": point,
            }
            for b, point in zip(bundle.buildings, building_points, strict=True)
        },
    )
    moved = _sync_households(
        session,
        did,
        bundle,
        grids,
        buildings,
        diff.kinds["households"],
        now,
        write=write,
        progress=progress,
    )

    unit_points = _points([(u.lon, u.lat) for u in bundle.units])
    units = sync(
        "units",
        Unit,
        {
            u.code: {"name": u.name, "geom": point}
            for u, point in zip(bundle.units, unit_points, strict=True)
        },
    )
    teams = sync(
        "teams",
        Team,
        {
            t.code: {
                "name": t.name,
                "kind": t.kind,
                "unit_id": units[t.unit] if t.unit else None,
                "origin": Origin.BUNDLE.value,
            }
            for t in bundle.teams
        },
    )
    responder_points = _points([(r.lon, r.lat) for r in bundle.responders])
    sync(
        "responders",
        Responder,
        {
            r.code: {
                "name": r.name,
                "phone": r.phone,
                "kind": r.kind,
                "unit_id": units[r.unit] if r.unit else None,
                "team_id": teams[r.team] if r.team else None,
                "home_grid_id": grids[r.home_grid] if r.home_grid else None,
                "geom": point,
                "skills": list(r.skills),
                "seniority": r.seniority,
                "leads_building_id": buildings[r.leads_building] if r.leads_building else None,
                "origin": Origin.BUNDLE.value,
            }
            for r, point in zip(bundle.responders, responder_points, strict=True)
        },
    )
    _sync_pairings(session, did, bundle, units, communities, diff.kinds["pairings"], now, write)
    if write:
        # The planner learns the district's size now, not when autovacuum gets round to it:
        # PostgreSQL, taking a just-imported responder table for one row, read the call-up's
        # candidates in a nested loop (0.9 s of every re-plan on the street preset, not 0.04).
        session.flush()
        refresh_statistics(session, DISTRICT_TABLES)
    return diff, moved


# What an import writes in bulk.
DISTRICT_TABLES = (
    "street",
    "community",
    "grid",
    "building",
    "household",
    "unit",
    "team",
    "responder",
    "pairing",
)


def _stored_micro(session: Session, district_id: int) -> dict[str, dict[str, Any]]:
    """The stored micro-grids as they are: the first pass over grids settles the general ones
    (a micro-grid's parent must exist first) without retiring a single micro-grid."""
    return {
        row.code: {
            "community_id": row.community_id,
            "parent_id": row.parent_id,
            "level": row.level,
            "name": row.name,
        }
        for row in session.execute(
            select(Grid.code, Grid.community_id, Grid.parent_id, Grid.level, Grid.name).where(
                Grid.district_id == district_id,
                Grid.level == GridLevel.MICRO.value,
                Grid.current(),
            )
        )
    }


def _dedupe(diff: KindDifference) -> None:
    for name in ("added", "changed", "retired"):
        setattr(diff, name, list(dict.fromkeys(getattr(diff, name))))


def _sync_households(
    session: Session,
    district_id: int,
    bundle: Bundle,
    grids: dict[str, int],
    buildings: dict[str, int],
    diff: KindDifference,
    now: datetime,
    *,
    write: bool,
    progress: Progress | None,
) -> list[str]:
    """Half a million rows: compared as columns (numpy), written as few statements. Returns
    the codes of households that move (another grid or another position): structure, unlike
    tags and sizes."""
    h = bundle.households
    # The driver's own cursor: half a million rows as plain tuples, transposed into columns
    # (rows through SQLAlchemy's result cost more than the comparison itself).
    postgres = is_postgres(session.get_bind())
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(
            "SELECT id, code, micro_grid_id, size, tags, retired_at IS NOT NULL, "
            "building_id, building_unit, door, address, "
            + ("ST_AsBinary(geom)" if postgres else "geom")
            + " FROM household WHERE district_id = "
            + ("%s" if postgres else "?"),
            (district_id,),
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    n = len(rows)
    ids, codes, micro, sizes, tags, retired, *place, shapes = (
        zip(*rows, strict=True) if n else ((),) * 11
    )
    stored_place = list(zip(*place, strict=True))  # building id, unit, door, address
    stored_code = list(codes)
    position = {code: k for k, code in enumerate(stored_code)}
    stored_id = np.asarray(ids, dtype=np.int64)
    stored_grid = np.asarray(micro, dtype=np.int64)
    stored_size = np.asarray(sizes, dtype=np.int64)
    stored_tags = np.asarray(tags, dtype=np.int64)
    stored_retired = np.asarray(retired, dtype=bool)
    stored_xy = (
        shapely.get_coordinates(
            shapely.from_wkb(np.asarray([bytes(g) for g in shapes], dtype=object))
        )
        if n
        else np.zeros((0, 2))
    )

    at = np.fromiter((position.get(c, -1) for c in h.code), dtype=np.int64, count=len(h))
    grid_of = {code: grids[code] for code in set(h.micro_grid)}
    want_grid = np.fromiter((grid_of[c] for c in h.micro_grid), dtype=np.int64, count=len(h))
    old = at >= 0
    k = at[old]
    moved_xy = np.zeros(len(h), dtype=bool)
    moved_xy[old] = (np.abs(stored_xy[k, 0] - h.lon[old]) > _COORDINATE_TOLERANCE) | (
        np.abs(stored_xy[k, 1] - h.lat[old]) > _COORDINATE_TOLERANCE
    )
    other_grid = np.zeros(len(h), dtype=bool)
    other_grid[old] = stored_grid[k] != want_grid[old]
    other_size = np.zeros(len(h), dtype=bool)
    other_size[old] = stored_size[k] != h.size[old]
    other_tags = np.zeros(len(h), dtype=bool)
    other_tags[old] = stored_tags[k] != h.tags[old]
    back = np.zeros(len(h), dtype=bool)
    back[old] = stored_retired[k]
    want_place = [
        (buildings[b] if b else None, u, d, a)
        for b, u, d, a in zip(h.building, h.building_unit, h.door, h.address, strict=True)
    ]
    at_list = at.tolist()
    other_place = np.fromiter(
        (x >= 0 and stored_place[x] != want_place[i] for i, x in enumerate(at_list)),
        dtype=bool,
        count=len(h),
    )

    new = np.flatnonzero(~old).tolist()
    diff.added.extend(h.code[i] for i in new)
    updates: list[dict[str, Any]] = []
    changed = back | moved_xy | other_grid | other_size | other_tags | other_place
    for i in np.flatnonzero(old & changed):
        pk = int(stored_id[at[i]])
        if back[i]:
            values: dict[str, Any] = {
                "retired_at": None,
                "micro_grid_id": int(want_grid[i]),
                "size": int(h.size[i]),
                "tags": int(h.tags[i]),
                "geom": shapely.Point(h.lon[i], h.lat[i]),
                **_place_values(want_place[i]),
            }
            diff.added.append(h.code[i])
        else:
            values = {}
            if other_grid[i]:
                values["micro_grid_id"] = int(want_grid[i])
            if other_size[i]:
                values["size"] = int(h.size[i])
            if other_tags[i]:
                values["tags"] = int(h.tags[i])
            if moved_xy[i]:
                values["geom"] = shapely.Point(h.lon[i], h.lat[i])
            if other_place[i]:
                values.update(_place_values(want_place[i]))
            diff.changed.append(h.code[i])
        updates.append({"id": pk, **values})
    moved_codes = [h.code[i] for i in np.flatnonzero(old & ~back & (moved_xy | other_grid))]

    kept = np.zeros(n, dtype=bool)
    kept[k] = True
    leaving = np.flatnonzero(~kept & ~stored_retired)
    diff.retired.extend(stored_code[x] for x in leaving)
    if not write:
        return moved_codes
    everything = len(new) == len(h)  # a first import: no copy of the columns
    if new:
        (progress or NoProgress()).step("writing households", total=len(new))
    write_households(
        session, bundle, district_id, grids, buildings, progress, rows=None if everything else new
    )
    _update_by_id(session, Household, updates)
    _retire(session, Household, stored_id[leaving].tolist(), now)
    return moved_codes


def _place_values(place: tuple[int | None, str, str, str]) -> dict[str, Any]:
    building_id, unit, door, address = place
    return {"building_id": building_id, "building_unit": unit, "door": door, "address": address}


def _sync_pairings(
    session: Session,
    district_id: int,
    bundle: Bundle,
    units: dict[str, int],
    communities: dict[str, int],
    diff: KindDifference,
    now: datetime,
    write: bool,
) -> None:
    """Pairings have no code of their own: a unit and a community name one."""
    unit_code = {pk: code for code, pk in units.items()}
    community_code = {pk: code for code, pk in communities.items()}
    stored = {
        (row.unit_id, row.community_id): row
        for row in session.execute(
            select(
                Pairing.id,
                Pairing.unit_id,
                Pairing.community_id,
                Pairing.wartime_quota,
                Pairing.retired_at,
                Pairing.origin,
            ).where(Pairing.district_id == district_id)
        )
    }
    inserts, updates, wanted = [], [], set()
    for p in bundle.pairings:
        key = (units[p.unit], communities[p.community])
        wanted.add(key)
        label = f"{p.unit}/{p.community}"
        row = stored.get(key)
        if row is None:
            inserts.append(
                {
                    "district_id": district_id,
                    "unit_id": key[0],
                    "community_id": key[1],
                    "wartime_quota": p.wartime_quota,
                }
            )
            diff.added.append(label)
        elif row.retired_at is not None:
            updates.append(
                {
                    "id": row.id,
                    "retired_at": None,
                    "wartime_quota": p.wartime_quota,
                    "origin": Origin.BUNDLE.value,
                }
            )
            diff.added.append(label)
        elif row.wartime_quota != p.wartime_quota or row.origin != Origin.BUNDLE:
            updates.append(
                {"id": row.id, "wartime_quota": p.wartime_quota, "origin": Origin.BUNDLE.value}
            )
            diff.changed.append(label)
    retire = []
    for key, row in stored.items():
        if key not in wanted and row.retired_at is None and _kept_by_bundles(row):
            retire.append(row.id)
            diff.retired.append(
                f"{unit_code.get(key[0], key[0])}/{community_code.get(key[1], key[1])}"
            )
    if not write:
        return
    if inserts:
        session.execute(insert(Pairing), inserts)
    _update_by_id(session, Pairing, updates)
    _retire(session, Pairing, retire, now)


def refuse_in_wartime(
    session: Session, district: District, bundle: Bundle, diff: Difference, moved: list[str]
) -> None:
    """Structural changes to the area of a live mobilisation are refused naming it: streets,
    communities, grids and buildings added, changed or retired, households added, moved or
    retired, and
    people retired while they hold a slot. Tags, sizes, phone numbers, new people and quotas
    land whatever is live."""
    live = dict(
        session.execute(
            select(MobilisationArea.community_id, MobilisationArea.mobilisation_id)
            .join(Mobilisation, Mobilisation.id == MobilisationArea.mobilisation_id)
            .where(
                Mobilisation.district_id == district.id,
                Mobilisation.status.in_(LIVE),
                MobilisationArea.active.is_(True),
            )
        ).all()
    )
    if not live:
        return
    touched = _touched_communities(session, district.id, bundle, diff, moved)
    hit = sorted({live[c] for c in touched if c in live})
    if not hit:
        return
    title = session.execute(
        select(Mobilisation.title).where(Mobilisation.id == hit[0])
    ).scalar_one()
    what = sorted(
        {label for c, labels in touched.items() if live.get(c) == hit[0] for label in labels}
    )
    raise DistrictInWartime(hit[0], title, what)


def _touched_communities(
    session: Session, district_id: int, bundle: Bundle, diff: Difference, moved: list[str]
) -> dict[int, set[str]]:
    """Community id -> what of the update's structure lies in it (before and after)."""
    touched: dict[int, set[str]] = {}

    def mark(rows: Iterable[Any], kind: str) -> None:
        for community_id, code in rows:
            if community_id is not None:
                touched.setdefault(community_id, set()).add(f"{kind} {code}")

    def stored(stmt: Any, codes: list[str], column: Any) -> list[Any]:
        return list(session.execute(stmt.where(one_of(column, codes))).all())

    community_ids = dict(
        session.execute(
            select(Community.code, Community.id).where(Community.district_id == district_id)
        ).all()
    )
    community_of_grid = {g.code: g.parent for g in bundle.grids if g.level == GridLevel.GENERAL}
    community_of_grid.update(
        {g.code: community_of_grid[g.parent] for g in bundle.grids if g.level == GridLevel.MICRO}
    )
    streets, communities, grids = (diff.kinds[k] for k in ("streets", "communities", "grids"))
    households = diff.kinds["households"]
    mark(
        stored(
            select(Community.id, Street.code)
            .join(Street, Street.id == Community.street_id)
            .where(Street.district_id == district_id),
            [*streets.changed, *streets.retired],
            Street.code,
        ),
        "streets",
    )
    mark(
        ((community_ids.get(c), c) for c in (*communities.changed, *communities.retired)),
        "communities",
    )
    mark(
        stored(
            select(Grid.community_id, Grid.code).where(Grid.district_id == district_id),
            [*grids.changed, *grids.retired],
            Grid.code,
        ),
        "grids",
    )
    mark(
        ((community_ids.get(community_of_grid[c]), c) for c in (*grids.added, *grids.changed)),
        "grids",
    )
    mark(
        stored(
            select(Grid.community_id, Household.code)
            .join(Grid, Grid.id == Household.micro_grid_id)
            .where(Household.district_id == district_id),
            [*households.retired, *moved],
            Household.code,
        ),
        "households",
    )
    buildings = diff.kinds["buildings"]
    mark(
        stored(
            select(Grid.community_id, Building.code)
            .join(Grid, Grid.id == Building.micro_grid_id)
            .where(Building.district_id == district_id),
            [*buildings.changed, *buildings.retired],
            Building.code,
        ),
        "buildings",
    )
    grid_of_building = {b.code: b.micro_grid for b in bundle.buildings}
    mark(
        (
            (community_ids.get(community_of_grid[grid_of_building[c]]), c)
            for c in (*buildings.added, *buildings.changed)
        ),
        "buildings",
    )
    arriving = set(households.added) | set(moved)
    if arriving:
        h = bundle.households
        mark(
            (
                (community_ids.get(community_of_grid[h.micro_grid[i]]), code)
                for i, code in enumerate(h.code)
                if code in arriving
            ),
            "households",
        )
    mark(
        stored(
            select(Assignment.community_id, Responder.code)
            .join(Assignment, Assignment.responder_id == Responder.id)
            .join(Mobilisation, Mobilisation.id == Assignment.mobilisation_id)
            .where(Responder.district_id == district_id, Mobilisation.status.in_(LIVE)),
            diff.kinds["responders"].retired,
            Responder.code,
        ),
        "responders",
    )
    return touched
