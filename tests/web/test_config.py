"""What the pages learn of the deployment (/ui/config.json) and the hosts their CSP allows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from mobilize.api.app import create_app
from mobilize.clock import ManualClock
from mobilize.settings import Settings

AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}"


def _img_sources(csp: str) -> list[str]:
    (directive,) = [d.strip() for d in csp.split(";") if d.strip().startswith("img-src")]
    return directive.split()[1:]


def test_without_a_base_map_the_pages_take_images_from_nowhere_else(
    engine: Engine, clock: ManualClock
) -> None:
    with TestClient(create_app(Settings(), engine=engine, clock=clock)) as client:
        assert client.get("/ui/config.json").json() == {"baseMap": None}
        for page in ("command", "phone", "review"):
            csp = client.get(f"/ui/{page}").headers["Content-Security-Policy"]
            assert _img_sources(csp) == ["'self'", "data:", "blob:"]


def test_a_base_map_reaches_the_pages_and_only_its_tile_hosts_are_allowed(
    engine: Engine, clock: ManualClock
) -> None:
    settings = Settings(
        base_map_url=AMAP,
        base_map_crs="gcj02",
        base_map_subdomains="1234",
        base_map_attribution="© 高德地图",
    )
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        assert client.get("/ui/config.json").json() == {
            "baseMap": {
                "url": AMAP,
                "crs": "gcj02",
                "subdomains": "1234",
                "attribution": "© 高德地图",
                "maxZoom": 18,
            }
        }
        csp = client.get("/ui/command").headers["Content-Security-Policy"]
        assert _img_sources(csp) == [
            "'self'",
            "https://webrd01.is.autonavi.com",
            "https://webrd02.is.autonavi.com",
            "https://webrd03.is.autonavi.com",
            "https://webrd04.is.autonavi.com",
            "data:",
            "blob:",
        ]
        assert "autonavi" not in csp.replace(" ".join(_img_sources(csp)), "")  # images only


@pytest.mark.parametrize(
    ("url", "missing"),
    [
        ("ftp://tiles.example/{z}/{x}/{y}.png", "the scheme"),
        ("https://tiles.example/{z}/{x}.png", "{y}"),
        ("tiles.example/{x}/{y}", "{z}"),
    ],
)
def test_a_tile_url_without_its_parts_is_refused_by_name(url: str, missing: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(base_map_url=url)
    assert "MOBILIZE_BASE_MAP_URL" in str(error.value) and missing in str(error.value)
