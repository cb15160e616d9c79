"""Validation reports every problem at once, naming file, line or feature, and field."""

from pathlib import Path

import numpy as np
import pytest
import shapely

from mobilize.bundle import Bundle, BundleInvalid, read_bundle
from tests.bundles import feature, load_layer, read_rows, save_layer, write, write_rows


def _problems(path: Path) -> list[str]:
    with pytest.raises(BundleInvalid) as caught:
        read_bundle(path)
    return [str(p) for p in caught.value.problems if not p.warning]


def test_a_generated_bundle_reads_back_whole(tiny_bundle: Bundle, tmp_path: Path) -> None:
    read = read_bundle(write(tiny_bundle, tmp_path))
    assert read.counts() == tiny_bundle.counts()
    assert read.warnings == []
    # Households were written without micro-grids and placed again by point-in-polygon.
    assert read.households.micro_grid == tiny_bundle.households.micro_grid


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_chinese_map_coordinates_are_converted_on_the_way_in(
    tiny_bundle: Bundle, tmp_path: Path, crs: str
) -> None:
    path = write(tiny_bundle, tmp_path, crs=crs)
    raw = read_rows(path, "households.csv")[0]
    # The file really is offset by hundreds of metres...
    assert abs(float(raw["lon"]) - tiny_bundle.households.lon[0]) > 0.002
    read = read_bundle(path)
    # ...and lands back where it belongs, to within the file's 1e-7° rounding.
    assert np.max(np.abs(read.households.lon - tiny_bundle.households.lon)) < 3e-7
    assert np.max(np.abs(read.households.lat - tiny_bundle.households.lat)) < 3e-7
    assert read.households.micro_grid == tiny_bundle.households.micro_grid
    assert read.source_crs == crs
    grid = read.grids[0]
    assert shapely.hausdorff_distance(grid.geom, tiny_bundle.grids[0].geom) < 3e-7


def test_single_feature_and_bare_geometry_files_are_accepted(
    tiny_bundle: Bundle, tmp_path: Path
) -> None:
    path = write(tiny_bundle, tmp_path)
    doc = load_layer(path, "district.geojson")
    save_layer(path, "district.geojson", doc["features"][0]["geometry"])
    streets = load_layer(path, "streets.geojson")
    single = streets["features"][0] | {"stray": "member"}
    save_layer(path, "streets.geojson", single)
    assert read_bundle(path).counts() == tiny_bundle.counts()


def test_every_problem_is_reported_in_one_run(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    grids = load_layer(path, "grids.geojson")
    micro = [f for f in grids["features"] if f["properties"]["level"] == "micro"]
    general = [f for f in grids["features"] if f["properties"]["level"] == "general"]
    # 1. a self-intersecting polygon (bow tie)
    micro[0]["geometry"] = {
        "type": "Polygon",
        "coordinates": [
            [[104.0, 30.0], [104.001, 30.001], [104.001, 30.0], [104.0, 30.001], [104.0, 30.0]]
        ],
    }
    # 2. overlapping siblings: micro[2] grows over its neighbours
    sibling_parent = micro[2]["properties"]["parent"]
    parent_geom = shapely.geometry.shape(feature(grids, sibling_parent)["geometry"])
    micro[2]["geometry"] = shapely.geometry.mapping(parent_geom.buffer(-0.0001))
    # 3. a grid outside its parent: a general grid moved 2 km east
    moved = shapely.affinity.translate(shapely.geometry.shape(general[-1]["geometry"]), 0.02, 0)
    general[-1]["geometry"] = shapely.geometry.mapping(moved)
    # 4. a duplicate code
    micro[5]["properties"]["code"] = micro[4]["properties"]["code"]
    save_layer(path, "grids.geojson", grids)

    households = read_rows(path, "households.csv")
    households[3]["lon"], households[3]["lat"] = households[3]["lat"], households[3]["lon"]
    households[4]["lon"] = "nan"
    households[5]["code"] = households[6]["code"]
    write_rows(path, "households.csv", households)

    pairings = read_rows(path, "pairings.csv")
    pairings[0]["wartime_quota"] = "-3"
    pairings[1]["unit"] = "U999"
    write_rows(path, "pairings.csv", pairings)
    responders = read_rows(path, "responders.csv")
    responders[0]["home_grid"] = "NOPE"
    responders[-1]["team"] = "VT999"
    write_rows(path, "responders.csv", responders)

    problems = "\n".join(_problems(path))
    micro0, micro2 = micro[0]["properties"]["code"], micro[2]["properties"]["code"]
    assert (
        f"grids.geojson: feature #{grids['features'].index(micro[0]) + 1} (code={micro0}): "
        "geometry: error: invalid polygon: Self-intersection" in problems
    )
    assert f"grids.geojson: feature code={micro2}: geometry: error: overlaps" in problems
    assert f"feature code={general[-1]['properties']['code']}: geometry: error: reaches" in problems
    assert f"duplicate code {micro[4]['properties']['code']!r}" in problems
    assert "households.csv: line 5: lat: error: coordinates" in problems
    assert "(longitude and latitude swapped?)" in problems
    assert "households.csv: line 6: lon: error: 'nan' is not a finite number" in problems
    assert "households.csv: line 8: code: error: duplicate code" in problems
    assert "pairings.csv: line 2: wartime_quota: error: -3 is negative" in problems
    assert "pairings.csv: line 3: unit: error: unknown unit 'U999'" in problems
    assert "responders.csv: line 2: home_grid: error: unknown grid 'NOPE'" in problems
    assert (
        f"responders.csv: line {len(responders) + 1}: team: error: unknown team 'VT999'" in problems
    )


def test_swapped_coordinates_inside_the_valid_range_are_recognised(
    tiny_bundle: Bundle, tmp_path: Path
) -> None:
    """In the far west of China longitude and latitude can both be valid latitudes... here
    they are not, but a district near (30, 30) would be: the check is spatial, not a range."""
    path = write(tiny_bundle, tmp_path)
    households = read_rows(path, "households.csv")
    households[0]["lon"], households[0]["lat"] = "30.5", "104.2"  # out of range: caught above
    households[1]["lon"] = str(float(households[1]["lon"]) + 0.5)  # 48 km east
    write_rows(path, "households.csv", households)
    problems = "\n".join(_problems(path))
    assert "households.csv: line 3: lon,lat: error: lies" in problems
    assert "m outside the district" in problems


def test_file_level_problems(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    (path / "bundle.json").write_text(
        '{"format": "mobilize-bundle/1", "crs": "utm", "district": {"code": "X", "name": "X"}}'
    )
    (path / "streets.geojson").write_text('{"type": "FeatureCollection",\n "features": [,]}')
    (path / "teams.csv").unlink()
    with (path / "units.csv").open("w") as handle:
        handle.write("code,name\nU1,unit\n")
    problems = _problems(path)
    assert (
        "bundle.json: crs: error: unsupported coordinate system 'utm'; use one of wgs84, "
        "gcj02, bd09" in problems
    )
    assert any(
        p.startswith("streets.geojson: line 2 column") and "malformed JSON" in p for p in problems
    )
    assert "teams.csv: error: file is missing" in problems
    assert any(
        p.startswith("units.csv: line 1: error: missing column(s) lon, lat") for p in problems
    )


def test_not_a_directory(tmp_path: Path) -> None:
    assert "not a bundle directory" in _problems(tmp_path / "nowhere")[0]


def test_a_household_in_a_sliver_beside_its_micro_grid_goes_to_the_nearest_with_a_warning(
    tiny_bundle: Bundle, tmp_path: Path
) -> None:
    """Polygons drawn on a web map (and converted from GCJ-02) leave slivers: a household a few
    centimetres outside every micro-grid is placed in the nearest, and the reader says so."""
    from shapely.geometry import mapping, shape

    path = write(tiny_bundle, tmp_path / "b")
    grids = load_layer(path, "grids.geojson")
    micro = next(f for f in grids["features"] if f["properties"]["level"] == "micro")
    code = micro["properties"]["code"]
    original = shape(micro["geometry"])
    shrunk = original.buffer(-3e-6)  # about 30 cm in: a sliver, narrower than any gap reported
    micro["geometry"] = mapping(shrunk)
    save_layer(path, "grids.geojson", grids)
    stray = original.difference(shrunk).representative_point()
    rows = read_rows(path, "households.csv")
    rows[0]["lon"], rows[0]["lat"] = f"{stray.x:.7f}", f"{stray.y:.7f}"
    write_rows(path, "households.csv", rows)

    read = read_bundle(path)
    assert read.households.micro_grid[0] == code
    [warning] = [str(w) for w in read.warnings if "households.csv: line 2:" in str(w)]
    assert "outside every micro-grid" in warning and repr(code) in warning

    with pytest.raises(BundleInvalid) as refused:
        read_bundle(path, placement_tolerance_m=0.01)
    assert any(
        "line 2" in str(p) and "lies in no micro-grid" in str(p) and code in str(p)
        for p in refused.value.problems
    )


def test_one_phone_is_one_person(tiny_bundle: Bundle, tmp_path: Path) -> None:
    path = write(tiny_bundle, tmp_path)
    rows = read_rows(path, "responders.csv")
    rows[7]["phone"] = rows[2]["phone"]
    write_rows(path, "responders.csv", rows)
    assert (
        f"responders.csv: line 9: phone: error: {rows[2]['phone']!r} is {rows[2]['code']}'s "
        "already (line 4): one phone, one person (it is how they sign in)" in _problems(path)
    )
