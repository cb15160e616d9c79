"""Half a million households are checked column by column; a row in doubt is read field by
field, so every problem is still named by line and field, in line order, and good rows read
exactly as written (spaces trimmed, short rows padded, blank lines and line breaks inside
quotes counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilize.bundle import Bundle, BundleInvalid, read_bundle
from mobilize.models import HouseholdTag
from tests.bundles import read_rows, write

HEADER = "code,lon,lat,size,tags,building,unit,door,address"


def _rows(path: Path) -> list[list[str]]:
    return [[r[k] for k in HEADER.split(",")] for r in read_rows(path, "households.csv")]


def _write(path: Path, lines: list[str]) -> None:
    (path / "households.csv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")


def test_every_bad_field_is_named_by_line_in_order(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    rows = _rows(path)
    first = rows[0]
    b = first[5]

    def line(i: int, **change: str) -> str:
        fields = dict(zip(HEADER.split(","), rows[i], strict=True))
        fields.update(change)
        return ",".join(fields.values())

    _write(
        path,
        [
            line(0, code=" " + first[0] + " "),  # line 2: good, padded
            "",  # line 3: blank, skipped
            line(1, size="x"),  # 4
            line(2, size="-2"),  # 5
            line(3, tags="rented;pets"),  # 6
            line(4, lon="abc"),  # 7
            line(5, code=first[0]),  # 8: a duplicate of line 2
            line(6, code=""),  # 9
            line(7, building="NOPE"),  # 10
            line(8, unit="1" * 17),  # 11
            line(9, address='"Room\n5"'),  # 12-13: a line break inside quotes
            line(10) + ",extra",  # 14: one value too many
            line(11, lat="95"),  # 15
            line(12, lon="inf", building=b),  # 16
        ],
    )
    with pytest.raises(BundleInvalid) as caught:
        read_bundle(path)
    households = [
        str(p) for p in caught.value.problems if p.file == "households.csv" and not p.warning
    ]
    tags = ", ".join(t.value for t in HouseholdTag)
    # A row the CSV itself cannot hold is named while the file is read, before the fields.
    assert households == [
        "households.csv: line 14: error: 10 values for 9 columns",
        "households.csv: line 4: size: error: 'x' is not a whole number",
        "households.csv: line 5: size: error: -2 is negative",
        f"households.csv: line 6: tags: error: unknown tag 'pets'; use {tags}",
        "households.csv: line 7: lon: error: 'abc' is not a number",
        f"households.csv: line 8: code: error: duplicate code {first[0]!r} (first at line 2)",
        "households.csv: line 9: code: error: missing",
        "households.csv: line 10: building: error: unknown building 'NOPE'",
        "households.csv: line 11: unit: error: '11111111111111111' is longer than 16 characters",
        f"households.csv: line 15: lat: error: coordinates {float(rows[11][1])}, 95.0 out of range",
        "households.csv: line 16: lon: error: 'inf' is not a finite number",
    ]


def test_good_rows_read_as_written(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    rows = _rows(path)
    code, lon, lat, _, _, building, _, _, _ = rows[0]
    _write(
        path,
        [
            f" {code} , {lon} ,{lat}, , elderly ; rented ,{building}, 2 ,301",  # short row
            "",
            f'{rows[1][0]},{rows[1][1]},{rows[1][2]},4,,,,,"Room\n5"',
            *(",".join(r) for r in rows[2:]),
        ],
    )
    h = read_bundle(path).households
    assert h.code[:2] == [code, rows[1][0]]
    assert (h.lon[0], h.lat[0]) == pytest.approx((float(lon), float(lat)), abs=1e-9)
    assert h.size[:2].tolist() == [1, 4]  # an empty size is one person
    assert h.tags[0] == HouseholdTag.ELDERLY.bit | HouseholdTag.RENTED.bit
    assert (h.building[0], h.building_unit[0], h.door[0]) == (building, "2", "301")
    assert h.address[0].endswith("2单元301室")  # the building's address, unit and door
    assert h.address[1] == "Room\n5"
    assert len(h.code) == len(rows)
