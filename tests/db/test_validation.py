"""Edge checks name the field and say what is wrong."""

import math

import pytest

from mobilize import validation
from mobilize.errors import InvalidInput


def test_text_is_trimmed_and_bounded() -> None:
    assert validation.text("name", "  张三 ", max_len=10) == "张三"
    with pytest.raises(InvalidInput, match="name: must be 1 to 10 characters"):
        validation.text("name", "x" * 11, max_len=10)
    with pytest.raises(InvalidInput, match="name: must be 1 to 10"):
        validation.text("name", "   ", max_len=10)
    with pytest.raises(InvalidInput, match="control characters"):
        validation.text("name", "a\x00b", max_len=10)


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        (math.nan, 30.0, "must be finite"),
        (104.0, math.inf, "must be finite"),
        (30.8, 104.1, "out of range (longitude and latitude swapped?)"),
        (200.0, 30.0, "out of range"),
    ],
)
def test_points_must_be_on_the_globe(lon: float, lat: float, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validation.point("location", lon, lat)
    assert caught.value.field == "location" and message in caught.value.message


def test_lists_are_capped() -> None:
    assert validation.items("areas", [1, 2], max_items=3) == [1, 2]
    with pytest.raises(InvalidInput, match="areas: must hold 0 to 3 items, got 4"):
        validation.items("areas", [1, 2, 3, 4], max_items=3)
