"""Writing a district as a bundle directory that `mobilize import` reads back."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geo import geometry_to_geojson, wgs84_to
from geo.crs import geometry_from_wgs84
from mobilize.bundle.model import BUNDLE_FORMAT, Bundle, household_address
from mobilize.models import HouseholdTag

_DECIMALS = 7  # about 1 cm


def _feature_collection(
    path: Path, features: Iterable[tuple[dict[str, Any], shapely.Geometry]], crs: str
) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": props,
                "geometry": geometry_to_geojson(geometry_from_wgs84(geom, crs), _DECIMALS),
            }
            for props, geom in features
        ],
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def _csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _coord(value: float) -> str:
    return f"{value:.{_DECIMALS}f}"


def write_bundle(
    bundle: Bundle, directory: str | Path, *, crs: str = "wgs84", household_grids: bool = False
) -> Path:
    """Write `bundle` (WGS-84 in memory) to `directory`, coordinates in `crs`.

    Households' micro-grids are left out unless asked for: the importer places them.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": BUNDLE_FORMAT,
        "crs": crs,
        "district": {"code": bundle.district_code, "name": bundle.district_name},
    }
    (root / "bundle.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    _feature_collection(
        root / "district.geojson",
        [({"code": bundle.district_code, "name": bundle.district_name}, bundle.district_geom)],
        crs,
    )
    _feature_collection(
        root / "streets.geojson",
        [({"code": s.code, "name": s.name}, s.geom) for s in bundle.streets],
        crs,
    )
    _feature_collection(
        root / "communities.geojson",
        [
            (
                {"code": c.code, "name": c.name, "street": c.street, "kind": c.kind}
                | ({"secretary": c.secretary} if c.secretary else {}),
                c.geom,
            )
            for c in bundle.communities
        ],
        crs,
    )
    _feature_collection(
        root / "grids.geojson",
        [
            ({"code": g.code, "name": g.name, "level": g.level, "parent": g.parent}, g.geom)
            for g in bundle.grids
        ],
        crs,
    )

    h = bundle.households
    hlon, hlat = wgs84_to(h.lon, h.lat, crs)
    tag_names = {
        mask: ";".join(t.value for t in HouseholdTag.unmask(mask))
        for mask in np.unique(h.tags).tolist()
    }
    with_grid = household_grids and any(h.micro_grid)
    header = ["code", "lon", "lat", "size", "tags", "building", "unit", "door", "address"]
    building_address = {b.code: b.address for b in bundle.buildings}

    def own_address(building: str, unit: str, door: str, address: str) -> str:
        """Only an address that is not its building's, unit and door (the reader derives it)."""
        if building and address == household_address(building_address[building], unit, door):
            return ""
        return address

    _csv(
        root / "households.csv",
        header + (["micro_grid"] if with_grid else []),
        (
            [
                code,
                _coord(x),
                _coord(y),
                size,
                tag_names[tags],
                building,
                unit,
                door,
                own_address(building, unit, door, address),
            ]
            + ([grid] if with_grid else [])
            for code, x, y, size, tags, grid, building, unit, door, address in zip(
                h.code,
                hlon.tolist(),
                hlat.tolist(),
                h.size.tolist(),
                h.tags.tolist(),
                h.micro_grid,
                h.building,
                h.building_unit,
                h.door,
                h.address,
                strict=True,
            )
        ),
    )
    blon, blat = wgs84_to([b.lon for b in bundle.buildings], [b.lat for b in bundle.buildings], crs)
    _csv(
        root / "buildings.csv",
        ["code", "name", "address", "lon", "lat", "micro_grid", "floors"],
        (
            [b.code, b.name, b.address, _coord(x), _coord(y), b.micro_grid, b.floors]
            for b, x, y in zip(bundle.buildings, blon.tolist(), blat.tolist(), strict=True)
        ),
    )

    ulon, ulat = wgs84_to([u.lon for u in bundle.units], [u.lat for u in bundle.units], crs)
    _csv(
        root / "units.csv",
        ["code", "name", "lon", "lat"],
        (
            [u.code, u.name, _coord(x), _coord(y)]
            for u, x, y in zip(bundle.units, ulon.tolist(), ulat.tolist(), strict=True)
        ),
    )
    _csv(
        root / "pairings.csv",
        ["unit", "community", "wartime_quota"],
        ([p.unit, p.community, p.wartime_quota] for p in bundle.pairings),
    )
    _csv(
        root / "teams.csv",
        ["code", "name", "kind", "unit"],
        ([t.code, t.name, t.kind, t.unit or ""] for t in bundle.teams),
    )

    def responder_rows() -> Iterable[list[Any]]:
        for r in bundle.responders:
            lon = lat = ""
            if r.lon is not None and r.lat is not None:
                x, y = wgs84_to([r.lon], [r.lat], crs)
                lon, lat = _coord(float(x[0])), _coord(float(y[0]))
            yield [
                r.code,
                r.name,
                r.phone,
                r.kind,
                r.unit or "",
                r.team or "",
                r.home_grid or "",
                lon,
                lat,
                ";".join(r.skills),
                r.seniority,
                r.leads_building or "",
            ]

    _csv(
        root / "responders.csv",
        [
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
            "seniority",
            "leads_building",
        ],
        responder_rows(),
    )
    return root
