"""Bundle format 2: buildings, units and doors; format 1 still reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobilize.bundle import Bundle, BundleInvalid, read_bundle
from tests.bundles import read_rows, write, write_rows


def _problems(path: Path) -> list[str]:
    with pytest.raises(BundleInvalid) as caught:
        read_bundle(path)
    return [str(p) for p in caught.value.problems if not p.warning]


def test_buildings_units_and_doors_read_back_whole(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    assert json.loads((path / "bundle.json").read_text())["format"] == "mobilize-bundle/2"
    first = read_rows(path, "households.csv")[0]
    # Written as its building, unit and door; the address follows from them, not repeated.
    assert first["building"] and first["unit"] and first["door"] and first["address"] == ""
    read = read_bundle(path)
    assert read.buildings == tiny_bundle.buildings
    h, g = read.households, tiny_bundle.households
    assert (h.building, h.building_unit, h.door) == (g.building, g.building_unit, g.door)
    building = next(b for b in read.buildings if b.code == h.building[0])
    assert h.address[0] == f"{building.address}{h.building_unit[0]}单元{h.door[0]}室"
    leaders = {r.code: r.leads_building for r in read.responders if r.leads_building}
    assert leaders and leaders == {
        r.code: r.leads_building for r in tiny_bundle.responders if r.leads_building
    }


def test_a_format_1_bundle_still_imports_without_buildings(
    tiny_bundle: Bundle, tmp_path: Path
) -> None:
    path = write(tiny_bundle, tmp_path)
    meta = json.loads((path / "bundle.json").read_text())
    (path / "bundle.json").write_text(json.dumps({**meta, "format": "mobilize-bundle/1"}))
    (path / "buildings.csv").unlink()
    for name, columns in (
        ("households.csv", ("building", "unit", "door", "address")),
        ("responders.csv", ("leads_building",)),
    ):
        rows = read_rows(path, name)
        write_rows(path, name, [{k: v for k, v in r.items() if k not in columns} for r in rows])
    read = read_bundle(path)
    assert read.buildings == [] and set(read.households.building) == {""}
    assert read.counts()["households"] == len(tiny_bundle.households)


def test_every_building_problem_is_named_with_its_line(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    buildings = read_rows(path, "buildings.csv")
    far = dict(buildings[0], code="B-FAR", lon=buildings[-1]["lon"], lat=buildings[-1]["lat"])
    buildings[1]["floors"] = "0"
    buildings[2]["micro_grid"] = "NO-SUCH-GRID"
    write_rows(path, "buildings.csv", [*buildings, far])
    households = read_rows(path, "households.csv")
    households[3]["building"] = "NO-SUCH-BUILDING"
    households[4]["door"] = "1" * 17
    write_rows(path, "households.csv", households)
    responders = read_rows(path, "responders.csv")
    leaders = [i for i, r in enumerate(responders) if r["leads_building"]]
    responders[leaders[1]]["leads_building"] = responders[leaders[0]]["leads_building"]
    write_rows(path, "responders.csv", responders)
    problems = _problems(path)
    last = len(buildings) + 2
    assert "buildings.csv: line 3: floors: error: 0 is below 1" in problems
    assert "buildings.csv: line 4: micro_grid: error: unknown micro-grid 'NO-SUCH-GRID'" in problems
    assert any(
        p.startswith(f"buildings.csv: line {last}: lon,lat: error: lies")
        and f"outside its micro-grid {buildings[0]['micro_grid']!r}" in p
        for p in problems
    )
    assert (
        "households.csv: line 5: building: error: unknown building 'NO-SUCH-BUILDING'" in problems
    )
    assert (
        "households.csv: line 6: door: error: '11111111111111111' is longer than 16 characters"
        in problems
    )
    first, second = leaders[0] + 2, leaders[1] + 2
    assert (
        f"responders.csv: line {second}: leads_building: error: building "
        f"{responders[leaders[0]]['leads_building']!r} already has its leader (line {first}); "
        "one leader per building" in problems
    )
