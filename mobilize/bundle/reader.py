"""Reading and validating a whole bundle before anything is written.

Every check runs, whatever failed before it, so one run reports every problem; only checks
that depend on unreadable input (spatial checks without a coordinate system) are skipped.

The longest module on purpose: the checks share what the first pass parsed (codes, levels,
geometry in metres, the problem list), and reading them top to bottom is reading the format."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geo import SUPPORTED_CRS, GeoJSONError, LocalMetric, geometry_to_wgs84, read_features, to_wgs84
from geo import place_points as place_in_polygons
from geo.validate import (
    coverage_gaps,
    outside_parents,
    overlapping_siblings,
    points_outside,
    polygon_problem,
)
from mobilize.bulkwork import without_gc_pauses
from mobilize.bundle.model import (
    BUNDLE_FORMAT,
    READABLE_FORMATS,
    BuildingRecord,
    Bundle,
    CommunityRecord,
    GridRecord,
    HouseholdTable,
    PairingRecord,
    ResponderRecord,
    StreetRecord,
    TeamRecord,
    UnitRecord,
    as_multipolygon,
    household_address,
)
from mobilize.bundle.problems import BundleInvalid, Problem, Problems
from mobilize.bundle.rules import ADDRESS_LIMIT, DOOR_LIMIT, place_problems, responder_problems
from mobilize.models import CommunityKind, GridLevel, HouseholdTag, TeamKind
from mobilize.progress import NoProgress, Progress

_TAGS = {tag.value: tag for tag in HouseholdTag}


@dataclass(frozen=True)
class _Feature:
    where: str
    props: dict[str, Any]
    geom: shapely.MultiPolygon  # WGS-84


def _where(index: int, code: str | None) -> str:
    return f"feature #{index + 1} (code={code})" if code else f"feature #{index + 1}"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _load_json(path: Path, problems: Problems) -> Any:
    name = path.name
    if not path.is_file():
        problems.error(name, "", None, "file is missing")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        problems.error(name, f"byte {exc.start}", None, "file is not UTF-8 text")
    except json.JSONDecodeError as exc:
        problems.error(
            name, f"line {exc.lineno} column {exc.colno}", None, f"malformed JSON: {exc.msg}"
        )
    return None


def _read_meta(root: Path, problems: Problems) -> tuple[str | None, str, str, str]:
    """The coordinate system, the district's code and name, and the format."""
    doc = _load_json(root / "bundle.json", problems)
    if doc is None:
        return None, "", "", BUNDLE_FORMAT
    if not isinstance(doc, dict):
        problems.error("bundle.json", "", None, "top level is not a JSON object")
        return None, "", "", BUNDLE_FORMAT
    found = doc.get("format")
    if found not in READABLE_FORMATS:
        expected = " or ".join(repr(f) for f in READABLE_FORMATS)
        problems.error("bundle.json", "", "format", f"expected {expected}, found {found!r}")
        found = BUNDLE_FORMAT
    crs = doc.get("crs")
    if crs not in SUPPORTED_CRS:
        problems.error(
            "bundle.json",
            "",
            "crs",
            f"unsupported coordinate system {crs!r}; use one of {', '.join(SUPPORTED_CRS)}",
        )
        crs = None
    district = doc.get("district")
    code = name = ""
    if not isinstance(district, dict):
        problems.error("bundle.json", "", "district", "missing object with 'code' and 'name'")
    else:
        code, name = _text(district.get("code")), _text(district.get("name"))
        for key, value in (("code", code), ("name", name)):
            if not value:
                problems.error("bundle.json", "", f"district.{key}", "missing")
    return crs, code, name, str(found)


def _in_range(geom: shapely.Geometry) -> bool:
    minx, miny, maxx, maxy = shapely.bounds(geom)
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def _read_layer(
    root: Path, filename: str, crs: str | None, required: Iterable[str], problems: Problems
) -> list[_Feature]:
    doc = _load_json(root / filename, problems)
    if doc is None:
        return []
    try:
        raw = read_features(doc)
    except GeoJSONError as exc:
        problems.error(filename, "", None, str(exc))
        return []
    features = []
    for feature in raw:
        code = _text(feature.properties.get("code")) or None
        where = _where(feature.index, code)
        ok = True
        for key in required:
            if not _text(feature.properties.get(key)):
                problems.error(filename, where, key, "missing")
                ok = False
        if feature.error:
            problems.error(filename, where, "geometry", feature.error)
            continue
        if feature.geometry is not None and not _in_range(feature.geometry):
            problems.error(
                filename,
                where,
                "geometry",
                "coordinates out of range (longitude and latitude swapped?)",
            )
            continue
        geom = geometry_to_wgs84(feature.geometry, crs or "wgs84")
        if reason := polygon_problem(geom):
            problems.error(filename, where, "geometry", reason)
            continue
        if ok:
            features.append(_Feature(where, feature.properties, as_multipolygon(geom)))
    return features


def _unique_codes(filename: str, items: list[tuple[str, str]], problems: Problems) -> None:
    """items: (code, where); reports every duplicate with where the first one is."""
    first: dict[str, str] = {}
    for code, where in items:
        if code in first:
            problems.error(
                filename, where, "code", f"duplicate code {code!r} (first at {first[code]})"
            )
        else:
            first[code] = where


@dataclass
class _Csv:
    """A CSV file's rows as columns of stripped text (short rows padded with ""), and the
    line each row ends on."""

    header: list[str]
    lines: list[int]
    columns: dict[str, list[str]]

    def rows(self) -> list[tuple[int, dict[str, str]]]:
        """Row by row, for the small files."""
        values = [self.columns[h] for h in self.header]
        return [
            (line, dict(zip(self.header, row, strict=True)))
            for line, row in zip(self.lines, zip(*values, strict=True), strict=True)
        ]


def _read_columns(
    root: Path, filename: str, required: list[str], problems: Problems
) -> _Csv | None:
    path = root / filename
    if not path.is_file():
        problems.error(filename, "", None, "file is missing")
        return None
    lines: list[int] = []
    rows: list[list[str]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in required if c not in header]
            if missing:
                problems.error(
                    filename,
                    "line 1",
                    None,
                    f"missing column(s) {', '.join(missing)}; found {', '.join(header)}",
                )
                return None
            width = len(header)
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) > width:
                    problems.error(
                        filename,
                        f"line {reader.line_num}",
                        None,
                        f"{len(row)} values for {width} columns",
                    )
                    continue
                if len(row) < width:
                    row += [""] * (width - len(row))
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        problems.error(filename, f"byte {exc.start}", None, "file is not UTF-8 text")
        return None
    except csv.Error as exc:
        problems.error(filename, "", None, f"malformed CSV: {exc}")
        return None
    # Column by column (a transposing zip of half a million rows took a second).
    columns = {h: [row[k].strip() for row in rows] for k, h in enumerate(header)}
    return _Csv(header, lines, columns)


def _read_csv(
    root: Path, filename: str, required: list[str], problems: Problems
) -> list[tuple[int, dict[str, str]]]:
    table = _read_columns(root, filename, required, problems)
    return [] if table is None else table.rows()


def _floats(column: list[str]) -> np.ndarray[Any, Any]:
    """A column of numbers; NaN where one does not read as a number (its row is doubted)."""
    try:
        return np.asarray(column, dtype=np.float64)
    except ValueError:
        return np.asarray([_float_or_nan(v) for v in column], dtype=np.float64)


def _float_or_nan(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return math.nan


def _whole(column: list[str]) -> np.ndarray[Any, Any]:
    """A column of whole numbers; -1 where one does not read as one (its row is doubted)."""
    try:
        return np.asarray([int(v) for v in column], dtype=np.int64)
    except (ValueError, OverflowError):
        return np.asarray([_int_or_minus_one(v) for v in column], dtype=np.int64)


def _int_or_minus_one(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        return -1
    return value if value < 2**62 else -1


def _tag_mask(tags: list[str]) -> int:
    mask = 0
    for tag in tags:
        mask |= _TAGS[tag].bit
    return mask


def _number(filename: str, where: str, field: str, raw: str, problems: Problems) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        problems.error(filename, where, field, f"{raw!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.error(filename, where, field, f"{raw!r} is not a finite number")
        return None
    return value


def _integer(
    filename: str, where: str, field: str, raw: str, problems: Problems, minimum: int = 0
) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        problems.error(filename, where, field, f"{raw!r} is not a whole number")
        return None
    if value < minimum:
        problems.error(
            filename,
            where,
            field,
            f"{value} is negative" if minimum == 0 else f"{value} is below {minimum}",
        )
        return None
    return value


def _lonlat(
    filename: str, where: str, row: dict[str, str], problems: Problems
) -> tuple[float, float] | None:
    lon = _number(filename, where, "lon", row.get("lon", ""), problems)
    lat = _number(filename, where, "lat", row.get("lat", ""), problems)
    if lon is None or lat is None:
        return None
    if not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
        hint = " (longitude and latitude swapped?)" if -90 <= lon <= 90 and abs(lat) <= 180 else ""
        problems.error(
            filename,
            where,
            "lat" if not -90 <= lat <= 90 else "lon",
            f"coordinates {lon}, {lat} out of range{hint}",
        )
        return None
    return lon, lat


# A household this close to a micro-grid but in none is placed in the nearest, with a warning.
PLACEMENT_TOLERANCE_M = 1.0


class _Reader:
    """One validation run; collects records and problems."""

    def __init__(self, root: Path, progress: Progress | None, placement_tolerance_m: float) -> None:
        self.root = root
        self.problems = Problems()
        self.progress = progress or NoProgress()
        self.placement_tolerance_m = placement_tolerance_m

    def run(self) -> Bundle:
        p = self.problems
        self.progress.step("reading bundle.json and polygons")
        crs, district_code, district_name, fmt = _read_meta(self.root, p)
        geo_crs = crs or "wgs84"
        district_features = _read_layer(self.root, "district.geojson", crs, [], p)
        streets = self._streets(geo_crs)
        communities = self._communities(geo_crs, {s.code for s in streets})
        grids = self._grids(geo_crs, {c.code for c in communities})
        district_geom = (
            as_multipolygon(shapely.union_all([f.geom for f in district_features]))
            if district_features
            else None
        )
        if (
            (self.root / "district.geojson").is_file()
            and not district_features
            and not any(e.file == "district.geojson" for e in p.errors)
        ):
            p.error("district.geojson", "", None, "no district polygon")

        metric = LocalMetric.around(district_geom) if district_geom is not None else None
        spatial_ok = crs is not None and metric is not None
        if crs is not None and metric is not None:
            self.progress.step("checking that every grid nests in its parent")
            self._check_nesting(metric, district_geom, streets, communities, grids)

        buildings = (
            self._buildings(geo_crs, metric if spatial_ok else None, grids)
            if fmt != "mobilize-bundle/1"
            else []
        )
        self.progress.step("reading households")
        households = self._households(crs, metric, district_geom, grids, buildings, spatial_ok)
        self.progress.step("reading units, pairings, teams and responders")
        units = self._units(geo_crs)
        pairings = self._pairings({u.code for u in units}, {c.code for c in communities})
        teams = self._teams({u.code for u in units})
        responders = self._responders(geo_crs, units, teams, grids, {b.code for b in buildings})
        known = {r.code for r in responders}
        for community in communities:
            if community.secretary and community.secretary not in known:
                p.error(
                    "communities.geojson",
                    f"feature code={community.code}",
                    "secretary",
                    f"unknown responder {community.secretary!r}",
                )

        if p.errors:
            raise BundleInvalid(p.items)
        assert district_geom is not None and crs is not None
        return Bundle(
            district_code=district_code,
            district_name=district_name,
            district_geom=district_geom,
            streets=streets,
            communities=communities,
            grids=grids,
            households=households,
            units=units,
            pairings=pairings,
            teams=teams,
            responders=responders,
            buildings=buildings,
            source_crs=crs,
            warnings=p.warnings,
        )

    # -- polygons -------------------------------------------------------------------------

    def _streets(self, crs: str) -> list[StreetRecord]:
        features = _read_layer(self.root, "streets.geojson", crs, ["code", "name"], self.problems)
        _unique_codes(
            "streets.geojson", [(_text(f.props["code"]), f.where) for f in features], self.problems
        )
        return [
            StreetRecord(_text(f.props["code"]), _text(f.props["name"]), f.geom) for f in features
        ]

    def _communities(self, crs: str, street_codes: set[str]) -> list[CommunityRecord]:
        name = "communities.geojson"
        features = _read_layer(self.root, name, crs, ["code", "name", "street"], self.problems)
        _unique_codes(name, [(_text(f.props["code"]), f.where) for f in features], self.problems)
        records = []
        for f in features:
            street = _text(f.props["street"])
            kind = _text(f.props.get("kind")) or CommunityKind.COMMUNITY.value
            if street not in street_codes:
                self.problems.error(name, f.where, "street", f"unknown street {street!r}")
                continue
            if kind not in {k.value for k in CommunityKind}:
                self.problems.error(
                    name, f.where, "kind", f"{kind!r} is not one of community, village"
                )
                continue
            records.append(
                CommunityRecord(
                    _text(f.props["code"]),
                    _text(f.props["name"]),
                    street,
                    kind,
                    f.geom,
                    _text(f.props.get("secretary")) or None,
                )
            )
        return records

    def _grids(self, crs: str, community_codes: set[str]) -> list[GridRecord]:
        name = "grids.geojson"
        features = _read_layer(
            self.root, name, crs, ["code", "name", "level", "parent"], self.problems
        )
        _unique_codes(name, [(_text(f.props["code"]), f.where) for f in features], self.problems)
        levels = {_text(f.props["code"]): _text(f.props["level"]) for f in features}
        records = []
        for f in features:
            level, parent = _text(f.props["level"]), _text(f.props["parent"])
            if level == GridLevel.GENERAL:
                if parent not in community_codes:
                    self.problems.error(
                        name,
                        f.where,
                        "parent",
                        f"unknown community {parent!r} (a general grid's parent is its community)",
                    )
                    continue
            elif level == GridLevel.MICRO:
                if levels.get(parent) != GridLevel.GENERAL:
                    found = (
                        "a micro-grid"
                        if levels.get(parent) == GridLevel.MICRO
                        else "not a grid in this file"
                    )
                    self.problems.error(
                        name,
                        f.where,
                        "parent",
                        f"{parent!r} is {found}; a micro-grid's parent must be a general grid",
                    )
                    continue
            else:
                self.problems.error(
                    name, f.where, "level", f"{level!r} is not one of general, micro"
                )
                continue
            records.append(
                GridRecord(_text(f.props["code"]), _text(f.props["name"]), level, parent, f.geom)
            )
        return records

    def _check_nesting(
        self,
        metric: LocalMetric,
        district: shapely.MultiPolygon,
        streets: list[StreetRecord],
        communities: list[CommunityRecord],
        grids: list[GridRecord],
    ) -> None:
        district_m = metric.to_metres(district)
        streets_m = metric.to_metres(np.array([s.geom for s in streets], dtype=object))
        self._nest(
            "streets.geojson",
            streets,
            [0] * len(streets),
            streets_m,
            [district_m],
            ["the district"],
            groups=["district"] * len(streets),
        )

        street_index = {s.code: i for i, s in enumerate(streets)}
        communities_m = metric.to_metres(np.array([c.geom for c in communities], dtype=object))
        self._nest(
            "communities.geojson",
            communities,
            [street_index[c.street] for c in communities],
            communities_m,
            streets_m,
            [f"street {s.code}" for s in streets],
            groups=[c.street for c in communities],
        )

        general = [g for g in grids if g.level == GridLevel.GENERAL]
        micro = [g for g in grids if g.level == GridLevel.MICRO]
        community_index = {c.code: i for i, c in enumerate(communities)}
        general_m = metric.to_metres(np.array([g.geom for g in general], dtype=object))
        self._nest(
            "grids.geojson",
            general,
            [community_index[g.parent] for g in general],
            general_m,
            communities_m,
            [f"community {c.code}" for c in communities],
            groups=[g.parent for g in general],
        )

        general_index = {g.code: i for i, g in enumerate(general)}
        micro_parent = [general_index[g.parent] for g in micro]
        micro_m = metric.to_metres(np.array([g.geom for g in micro], dtype=object))
        self._nest(
            "grids.geojson",
            micro,
            micro_parent,
            micro_m,
            general_m,
            [f"general grid {g.code}" for g in general],
            groups=[g.parent for g in micro],
        )

        for gap in coverage_gaps(general_m, micro_m, micro_parent):
            g = general[gap.parent]
            self.problems.warn(
                "grids.geojson",
                f"feature code={g.code}",
                "geometry",
                f"{gap.area_m2:.0f} m² of general grid {g.code} is in no micro-grid",
            )
        with_micro = set(micro_parent)
        for i, g in enumerate(general):
            if i not in with_micro:
                self.problems.warn(
                    "grids.geojson",
                    f"feature code={g.code}",
                    None,
                    f"general grid {g.code} has no micro-grids",
                )

    def _nest(
        self,
        filename: str,
        children: list[Any],
        parent_of: list[int],
        children_m: Any,
        parents_m: Any,
        parent_names: list[str],
        groups: list[str],
    ) -> None:
        for out in outside_parents(children_m, parent_of, parents_m):
            child = children[out.child]
            self.problems.error(
                filename,
                f"feature code={child.code}",
                "geometry",
                f"reaches {out.distance_m:.1f} m outside {parent_names[out.parent]} "
                f"({out.area_m2:.0f} m² outside; tolerance 1 m)",
            )
        for overlap in overlapping_siblings(children_m, groups):
            a, b = children[overlap.first], children[overlap.second]
            self.problems.error(
                filename,
                f"feature code={a.code}",
                "geometry",
                f"overlaps {b.code} by {overlap.area_m2:.0f} m² ({overlap.ratio:.1%} of the "
                "smaller; tolerance 0.5%)",
            )

    # -- tables ---------------------------------------------------------------------------

    def _households(
        self,
        crs: str | None,
        metric: LocalMetric | None,
        district: shapely.MultiPolygon | None,
        grids: list[GridRecord],
        buildings: list[BuildingRecord],
        spatial_ok: bool,
    ) -> HouseholdTable:
        name = "households.csv"
        building_of = {b.code: b for b in buildings}
        p = self.problems
        table = _read_columns(self.root, name, ["code", "lon", "lat", "size", "tags"], p)
        if table is None:
            table = _Csv([], [], {})
        micro_codes = {g.code for g in grids if g.level == GridLevel.MICRO}
        n = len(table.lines)

        def col(key: str) -> list[str]:  # an optional column left out reads as empty
            return table.columns.get(key) or [""] * n

        codes_in, lines_in = col("code"), table.lines
        # The first line of each code: a later one is a duplicate.
        first_line = dict(zip(reversed(codes_in), reversed(lines_in), strict=True))
        # Columns checked whole; only rows a check doubts go through the row-by-row reading
        # below, which names each problem (file, line, field) as it always has.
        suspect = np.zeros(n, dtype=bool)
        suspect |= np.fromiter((not c for c in codes_in), dtype=bool, count=n)
        suspect |= np.asarray(
            [first_line[c] != line for c, line in zip(codes_in, lines_in, strict=True)],
            dtype=bool,
        )
        lon_in, lat_in = _floats(col("lon")), _floats(col("lat"))
        suspect |= ~(np.isfinite(lon_in) & np.isfinite(lat_in))
        suspect |= ~((np.abs(lat_in) <= 90) & (np.abs(lon_in) <= 180))
        size_in = _whole([v or "1" for v in col("size")])
        suspect |= size_in < 0
        tag_masks: dict[str, int | None] = {}
        for raw in set(col("tags")):
            tags = [t.strip() for t in raw.split(";") if t.strip()]
            ok = all(t in _TAGS for t in tags)
            tag_masks[raw] = _tag_mask(tags) if ok else None
        mask_in = [tag_masks[raw] for raw in col("tags")]
        suspect |= np.fromiter((m is None for m in mask_in), dtype=bool, count=n)
        grid_in = col("micro_grid")
        known = {g: not g or g in micro_codes for g in set(grid_in)}
        suspect |= np.fromiter((not known[g] for g in grid_in), dtype=bool, count=n)
        building_in, unit_in = col("building"), col("unit")
        door_in, address_in = col("door"), col("address")
        suspect |= np.fromiter(
            (
                (b and b not in building_of)
                or len(u) > DOOR_LIMIT
                or len(d) > DOOR_LIMIT
                or len(a) > ADDRESS_LIMIT
                for b, u, d, a in zip(building_in, unit_in, door_in, address_in, strict=True)
            ),
            dtype=bool,
            count=n,
        )
        doubted = {int(i) for i in np.flatnonzero(suspect)}
        codes: list[str] = []
        lines: list[int] = []
        lons: list[float] = []
        lats: list[float] = []
        sizes: list[int] = []
        masks: list[int] = []
        given: list[str] = []
        places: list[tuple[str, str, str, str]] = []  # building, unit, door, address
        for i in range(n):
            line = lines_in[i]
            if i in doubted:
                row = {h: table.columns[h][i] for h in table.header}
                read = self._household_row(line, row, first_line, micro_codes, building_of)
                if read is None:
                    continue
                code, (lon_i, lat_i), size, mask, grid, place = read
            else:
                code, lon_i, lat_i = codes_in[i], float(lon_in[i]), float(lat_in[i])
                size, grid = int(size_in[i]), grid_in[i]
                known_mask = mask_in[i]
                assert known_mask is not None  # a row with an unknown tag is doubted
                mask = known_mask
                building, unit, door, address = (
                    building_in[i],
                    unit_in[i],
                    door_in[i],
                    address_in[i],
                )
                if not address and building:
                    address = household_address(building_of[building].address, unit, door)
                place = (building, unit, door, address)
            places.append(place)
            codes.append(code)
            lines.append(line)
            lons.append(lon_i)
            lats.append(lat_i)
            sizes.append(size)
            masks.append(mask)
            given.append(grid)

        lon, lat = to_wgs84(lons, lats, crs or "wgs84")
        placed = list(given)
        if spatial_ok and metric is not None and district is not None and codes:
            placed = self._place_households(metric, district, grids, lon, lat, lines, given)
        for i, (building, *_) in enumerate(places):
            # A building is in one micro-grid, and its households with it.
            if building and placed[i] != building_of[building].micro_grid:
                home = building_of[building].micro_grid
                if placed[i]:
                    p.warn(
                        name,
                        f"line {lines[i]}",
                        "building",
                        f"the point lies in {placed[i]!r} but building {building!r} is in "
                        f"{home!r}: placed with its building",
                    )
                placed[i] = home
        return HouseholdTable(
            code=codes,
            lon=lon,
            lat=lat,
            size=np.asarray(sizes, dtype=np.int64),
            tags=np.asarray(masks, dtype=np.int64),
            micro_grid=placed,
            building=[b for b, _, _, _ in places],
            building_unit=[u for _, u, _, _ in places],
            door=[d for _, _, d, _ in places],
            address=[a for _, _, _, a in places],
        )

    def _household_row(
        self,
        line: int,
        row: dict[str, str],
        first_line: dict[str, int],
        micro_codes: set[str],
        building_of: dict[str, BuildingRecord],
    ) -> tuple[str, tuple[float, float], int, int, str, tuple[str, str, str, str]] | None:
        """One household row read and checked field by field, each problem named; None when
        it has any."""
        name, where, p = "households.csv", f"line {line}", self.problems
        ok = True
        code = row["code"]
        if not code:
            p.error(name, where, "code", "missing")
            ok = False
        elif first_line[code] != line:
            p.error(
                name, where, "code", f"duplicate code {code!r} (first at line {first_line[code]})"
            )
            ok = False
        point = _lonlat(name, where, row, p)
        size = _integer(name, where, "size", row["size"], p) if row["size"] else 1
        mask = 0
        for tag in filter(None, (t.strip() for t in row["tags"].split(";"))):
            if tag not in _TAGS:
                p.error(name, where, "tags", f"unknown tag {tag!r}; use {', '.join(_TAGS)}")
                ok = False
            else:
                mask |= _TAGS[tag].bit
        grid = row.get("micro_grid", "")
        if grid and grid not in micro_codes:
            p.error(name, where, "micro_grid", f"unknown micro-grid {grid!r}")
            ok = False
        place = self._household_place(where, row, building_of)
        if point is None or size is None or place is None or not ok:
            return None
        return code, point, size, mask, grid, place

    def _household_place(
        self, where: str, row: dict[str, str], building_of: dict[str, BuildingRecord]
    ) -> tuple[str, str, str, str] | None:
        """A household's building, unit, door and address (format 2's columns; all optional).
        Without an address of its own, it is its building's, unit and door."""
        name = "households.csv"
        building, unit = row.get("building", ""), row.get("unit", "")
        door, address = row.get("door", ""), row.get("address", "")
        ok = True
        if building and building not in building_of:
            self.problems.error(name, where, "building", f"unknown building {building!r}")
            ok = False
        for field_name, message in place_problems(unit, door, address):
            self.problems.error(name, where, field_name, message)
            ok = False
        if not ok:
            return None
        if not address and building:
            address = household_address(building_of[building].address, unit, door)
        return building, unit, door, address

    def _place_households(
        self,
        metric: LocalMetric,
        district: shapely.MultiPolygon,
        grids: list[GridRecord],
        lon: np.ndarray,
        lat: np.ndarray,
        lines: list[int],
        given: list[str],
    ) -> list[str]:
        name = "households.csv"
        x, y = metric.xy(lon, lat)
        district_m = metric.to_metres(district)
        outside = set(points_outside(x, y, district_m).tolist())
        if outside:
            idx = np.fromiter(sorted(outside), dtype=np.int64)
            sx, sy = metric.xy(lat[idx], lon[idx])
            swapped = shapely.contains_xy(district_m, sx, sy)
            distances = shapely.distance(district_m, shapely.points(x[idx], y[idx]))
            for i, looks_swapped, dist in zip(idx, swapped, distances, strict=True):
                reason = (
                    "longitude and latitude look swapped"
                    if looks_swapped
                    else f"lies {dist:,.0f} m outside the district"
                )
                self.problems.error(name, f"line {lines[i]}", "lon,lat", reason)
        micro = [g for g in grids if g.level == GridLevel.MICRO]
        # Placed in WGS-84 degrees, on the polygons as they will be stored, as PostGIS would.
        found = place_in_polygons(lon, lat, [g.geom for g in micro])
        placed = []
        for i, (hit, grid) in enumerate(zip(found.tolist(), given, strict=True)):
            if grid:
                if hit >= 0 and micro[hit].code != grid:
                    self.problems.warn(
                        name,
                        f"line {lines[i]}",
                        "micro_grid",
                        f"given {grid!r} but the point lies in {micro[hit].code!r}",
                    )
                placed.append(grid)
            elif hit >= 0:
                placed.append(micro[hit].code)
            else:
                placed.append("")
        stray = [i for i, code in enumerate(placed) if not code and i not in outside]
        if stray:
            self._place_nearby(metric, micro, lon, lat, lines, stray, placed)
        return placed

    def _place_nearby(
        self,
        metric: LocalMetric,
        micro: list[GridRecord],
        lon: np.ndarray,
        lat: np.ndarray,
        lines: list[int],
        stray: list[int],
        placed: list[str],
    ) -> None:
        """Households in no micro-grid: within the tolerance of one, placed in the nearest with
        a warning naming it; further, an error naming the distance."""
        name = "households.csv"
        polygons = np.asarray([g.geom for g in micro], dtype=object)
        points = shapely.points(lon[stray], lat[stray])
        nearest = shapely.STRtree(polygons).nearest(points)
        for i, point, k in zip(stray, points, nearest.tolist(), strict=True):
            metres = metric.distance_m(point, polygons[k])
            if metres <= self.placement_tolerance_m:
                placed[i] = micro[k].code
                self.problems.warn(
                    name,
                    f"line {lines[i]}",
                    "lon,lat",
                    f"lies {metres:.2f} m outside every micro-grid: placed in the nearest, "
                    f"{micro[k].code!r}",
                )
            else:
                self.problems.error(
                    name,
                    f"line {lines[i]}",
                    "lon,lat",
                    f"lies in no micro-grid (a gap in the grid, {metres:,.1f} m from "
                    f"{micro[k].code!r}); give its micro_grid or fix the polygons",
                )

    def _units(self, crs: str) -> list[UnitRecord]:
        name = "units.csv"
        rows = _read_csv(self.root, name, ["code", "name", "lon", "lat"], self.problems)
        _unique_codes(name, [(r["code"], f"line {n}") for n, r in rows if r["code"]], self.problems)
        records = []
        for line, row in rows:
            where = f"line {line}"
            ok = self._required(name, where, row, ["code", "name"])
            point = _lonlat(name, where, row, self.problems)
            if point is None or not ok:
                continue
            lon, lat = to_wgs84([point[0]], [point[1]], crs)
            records.append(UnitRecord(row["code"], row["name"], float(lon[0]), float(lat[0])))
        return records

    def _required(self, filename: str, where: str, row: dict[str, str], keys: list[str]) -> bool:
        ok = True
        for key in keys:
            if not row.get(key):
                self.problems.error(filename, where, key, "missing")
                ok = False
        return ok

    def _pairings(self, units: set[str], communities: set[str]) -> list[PairingRecord]:
        name = "pairings.csv"
        rows = _read_csv(self.root, name, ["unit", "community", "wartime_quota"], self.problems)
        records = []
        seen: dict[tuple[str, str], int] = {}
        for line, row in rows:
            where = f"line {line}"
            ok = self._required(name, where, row, ["unit", "community", "wartime_quota"])
            if row["unit"] and row["unit"] not in units:
                self.problems.error(name, where, "unit", f"unknown unit {row['unit']!r}")
                ok = False
            if row["community"] and row["community"] not in communities:
                self.problems.error(
                    name, where, "community", f"unknown community {row['community']!r}"
                )
                ok = False
            quota = (
                _integer(name, where, "wartime_quota", row["wartime_quota"], self.problems)
                if row["wartime_quota"]
                else None
            )
            key = (row["unit"], row["community"])
            if key in seen:
                self.problems.error(
                    name,
                    where,
                    None,
                    f"unit {key[0]!r} is paired with {key[1]!r} twice (first at line {seen[key]})",
                )
                ok = False
            seen.setdefault(key, line)
            if ok and quota is not None:
                records.append(PairingRecord(row["unit"], row["community"], quota))
        return records

    def _teams(self, units: set[str]) -> list[TeamRecord]:
        name = "teams.csv"
        rows = _read_csv(self.root, name, ["code", "name", "kind", "unit"], self.problems)
        _unique_codes(name, [(r["code"], f"line {n}") for n, r in rows if r["code"]], self.problems)
        kinds = {k.value for k in TeamKind}
        records = []
        for line, row in rows:
            where = f"line {line}"
            ok = self._required(name, where, row, ["code", "name", "kind"])
            if row["kind"] and row["kind"] not in kinds:
                self.problems.error(
                    name, where, "kind", f"{row['kind']!r} is not one of {', '.join(sorted(kinds))}"
                )
                ok = False
            if row["unit"] and row["unit"] not in units:
                self.problems.error(name, where, "unit", f"unknown unit {row['unit']!r}")
                ok = False
            if ok:
                records.append(
                    TeamRecord(row["code"], row["name"], row["kind"], row["unit"] or None)
                )
        return records

    def _responders(
        self,
        crs: str,
        units: list[UnitRecord],
        teams: list[TeamRecord],
        grids: list[GridRecord],
        buildings: set[str],
    ) -> list[ResponderRecord]:
        name = "responders.csv"
        columns = [
            "code",
            "name",
            "phone",
            "kind",
            "unit",
            "team",
            "home_grid",
            "lon",
            "lat",
            "skills",
        ]
        rows = _read_csv(self.root, name, columns, self.problems)
        _unique_codes(name, [(r["code"], f"line {n}") for n, r in rows if r["code"]], self.problems)
        unit_codes = {u.code for u in units}
        team_kind = {t.code: t.kind for t in teams}
        grid_level = {g.code: g.level for g in grids}
        records = []
        p = self.problems
        leader_at: dict[str, int] = {}
        phone_at: dict[str, tuple[int, str]] = {}
        for line, row in rows:
            where = f"line {line}"
            ok = self._required(name, where, row, ["code", "name", "phone", "kind"])
            first = phone_at.setdefault(row["phone"], (line, row["code"]))
            if row["phone"] and first[0] != line:
                p.error(
                    name,
                    where,
                    "phone",
                    f"{row['phone']!r} is {first[1]}'s already (line {first[0]}): "
                    "one phone, one person (it is how they sign in)",
                )
                ok = False
            leads = row.get("leads_building", "")
            if leads and leads not in buildings:
                p.error(name, where, "leads_building", f"unknown building {leads!r}")
                ok = False
            elif leads in leader_at:
                p.error(
                    name,
                    where,
                    "leads_building",
                    f"building {leads!r} already has its leader (line {leader_at[leads]}); "
                    "one leader per building",
                )
                ok = False
            elif leads:
                leader_at[leads] = line
            kind, home = row["kind"], row["home_grid"]
            for field_name, message in responder_problems(
                kind=kind,
                phone=row["phone"],
                unit=row["unit"] or None,
                unit_known=row["unit"] in unit_codes,
                team=row["team"] or None,
                team_known=row["team"] in team_kind,
                home_grid=home or None,
                home_level=grid_level.get(home),
            ):
                p.error(name, where, field_name, message)
                ok = False
            lon = lat = None
            if row["lon"] or row["lat"]:
                point = _lonlat(name, where, row, p)
                if point is None:
                    ok = False
                else:
                    wl, wa = to_wgs84([point[0]], [point[1]], crs)
                    lon, lat = float(wl[0]), float(wa[0])
            if not ok:
                continue
            seniority = 0
            if row.get("seniority"):
                found = _integer(name, where, "seniority", row["seniority"], p)
                if found is None:
                    continue
                seniority = found
            skills = tuple(s.strip() for s in row["skills"].split(";") if s.strip())
            records.append(
                ResponderRecord(
                    row["code"],
                    row["name"],
                    row["phone"],
                    kind,
                    row["unit"] or None,
                    row["team"] or None,
                    home or None,
                    lon,
                    lat,
                    skills,
                    seniority,
                    leads or None,
                )
            )
        return records

    def _buildings(
        self, crs: str, metric: LocalMetric | None, grids: list[GridRecord]
    ) -> list[BuildingRecord]:
        """buildings.csv (format 2): each in one micro-grid, its point inside it."""
        name = "buildings.csv"
        columns = ["code", "name", "address", "lon", "lat", "micro_grid", "floors"]
        rows = _read_csv(self.root, name, columns, self.problems)
        _unique_codes(name, [(r["code"], f"line {n}") for n, r in rows if r["code"]], self.problems)
        micro = {g.code: g for g in grids if g.level == GridLevel.MICRO}
        records = []
        for line, row in rows:
            where = f"line {line}"
            ok = self._required(name, where, row, ["code", "name", "micro_grid", "floors"])
            if row["micro_grid"] and row["micro_grid"] not in micro:
                self.problems.error(
                    name, where, "micro_grid", f"unknown micro-grid {row['micro_grid']!r}"
                )
                ok = False
            if len(row["address"]) > ADDRESS_LIMIT:
                self.problems.error(
                    name, where, "address", f"longer than {ADDRESS_LIMIT} characters"
                )
                ok = False
            floors = (
                _integer(name, where, "floors", row["floors"], self.problems, minimum=1)
                if row["floors"]
                else None
            )
            point = _lonlat(name, where, row, self.problems)
            if point is None or floors is None or not ok:
                continue
            lon, lat = to_wgs84([point[0]], [point[1]], crs)
            record = BuildingRecord(
                row["code"],
                row["name"],
                row["address"],
                float(lon[0]),
                float(lat[0]),
                row["micro_grid"],
                floors,
            )
            grid, at = micro[record.micro_grid].geom, shapely.Point(record.lon, record.lat)
            if metric is not None and not grid.covers(at):
                metres = metric.distance_m(at, grid)
                if metres > self.placement_tolerance_m:
                    self.problems.error(
                        name,
                        where,
                        "lon,lat",
                        f"lies {metres:,.1f} m outside its micro-grid {record.micro_grid!r}",
                    )
                    continue
            records.append(record)
        return records


def read_bundle(
    path: str | Path,
    *,
    progress: Progress | None = None,
    placement_tolerance_m: float = PLACEMENT_TOLERANCE_M,
) -> Bundle:
    """Read and validate a bundle directory; raise BundleInvalid naming every problem.
    A household within `placement_tolerance_m` of a micro-grid but in none (a sliver left by
    drawing or by a coordinate conversion) goes to the nearest one, with a warning."""
    root = Path(path)
    if not root.is_dir():
        raise BundleInvalid(
            [Problem(str(root), "", None, "not a bundle directory (no such folder)")]
        )
    with without_gc_pauses():
        return _Reader(root, progress, placement_tolerance_m).run()
