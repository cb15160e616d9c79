"""The pages in a real browser: Debian's Chromium, driven by Playwright (no browser download).

The service runs in a thread on a real port, on each test backend; the browser signs in,
activates, checks in with a faked location, goes offline and back, and moves the replay
slider, and the database says what landed. Screenshots go to out/screenshots/ (CI keeps them)."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import math
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyproj
import pytest
import shapely
from PIL import Image
from playwright import sync_api as playwright
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from geo.crs import wgs84_to
from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.auth.ratelimit import MemoryCounter, RateLimiter
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.mobilisation import assignments, switch
from mobilize.models import (
    Assignment,
    Community,
    Event,
    Grid,
    GridState,
    HouseholdRecord,
    HouseholdTag,
    Leave,
    Mobilisation,
    MobilisationArea,
    ProblemReport,
    Responder,
    Role,
    Street,
)
from mobilize.notify import Message, Notifier
from mobilize.settings import Settings
from mobilize.tasks import dispatch
from mobilize.topology import free_port
from mobilize.web import STATIC
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.serving import serving
from tests.wartime import (
    activated,
    check_in_at_centre,
    district_commander,
    grid_of,
    phone,
    write,
)

CHROMIUM = os.environ.get("MOBILIZE_TEST_CHROMIUM", shutil.which("chromium") or "")
SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
WAIT_MS = 15_000


class Outbox:
    """The phones' channel: messages (sign-in codes among them) stay here for the test."""

    name = "test"

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str = "") -> None:
        self.messages.append(message)

    def code_for(self, phone_number: str) -> str:
        """The newest code sent to the phone (it goes out just after the page's answer)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for message in reversed(self.messages):
                if message.to == phone_number and message.kind == "sign_in_code":
                    found = re.search(r"\b(\d{6})\b", message.text)
                    assert found
                    return found.group(1)
            time.sleep(0.02)
        raise AssertionError(f"no code sent to {phone_number}")


@dataclass
class Site:
    url: str
    outbox: Outbox
    clock: ManualClock


@pytest.fixture
def now() -> ManualClock:
    """Server and browser agree on the time, so countdowns read sensibly."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


class Cable:
    """The phone's network between it and the server, which the test can pull out.

    Chromium's offline emulation does not hold for a page its service worker controls (a
    reload comes through the worker, and the page's requests then reach the server), so the
    test cuts the connection itself: while cut, new connections are refused and open ones
    are dropped, as when a phone loses its signal.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.plug_in()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def plug_in(self) -> None:
        listener = socket.create_server(("127.0.0.1", self._port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def pull_out(self) -> None:
        assert self._listener is not None
        _drop(self._listener)  # shutdown wakes the thread blocked in accept()
        self._listener = None
        with self._lock:
            for conn in self._open:
                _drop(conn)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
                far = socket.create_connection(self._upstream)
            except OSError:
                return
            with self._lock:
                self._open |= {near, far}
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for conn in (source, sink):
            _drop(conn)
        with self._lock:
            self._open -= {source, sink}


def _drop(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


@pytest.fixture
def site(engine: Engine, now: ManualClock) -> Iterator[Site]:
    outbox = Outbox()
    notifier = Notifier([outbox])
    app = create_app(
        Settings(),
        engine=engine,
        clock=now,
        notifier=notifier,
        dispatcher=InProcessDispatcher(engine, notifier, now),
        limiter=RateLimiter(MemoryCounter(), now=lambda: 1_000_000.0),
    )
    with serving(app) as port:
        yield Site(f"http://127.0.0.1:{port}", outbox, now)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM, "Chromium is missing: scripts/browser-up installs Debian's package"
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def new_context(browser: Any, errors: list[str], **options: Any) -> Any:
    """A browser context whose pages' uncaught script errors are collected in `errors`."""
    ctx = browser.new_context(locale="zh-CN", **options)
    ctx.set_default_timeout(WAIT_MS)
    ctx.on("page", lambda page: page.on("pageerror", lambda e: errors.append(str(e))))
    return ctx


@pytest.fixture
def script_errors() -> Iterator[list[str]]:
    errors: list[str] = []
    yield errors
    assert errors == [], "the pages threw"


@pytest.fixture
def context(browser: Any, script_errors: list[str]) -> Iterator[Any]:
    ctx = new_context(browser, script_errors, viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


@pytest.fixture
def handset(browser: Any, script_errors: list[str], called: Any) -> Iterator[Any]:
    """A phone-sized context standing at the called person's grid centre."""
    _, centre, _ = called
    ctx = new_context(
        browser,
        script_errors,
        viewport={"width": 390, "height": 844},
        geolocation={"longitude": centre.x, "latitude": centre.y, "accuracy": 10},
        permissions=["geolocation"],
    )
    yield ctx
    ctx.close()


def _walking_key(address: str) -> list[Any]:
    """An address as a cadre walks it: its numbers compared as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", address)]


def shot(page: Any, request: pytest.FixtureRequest, step: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{request.node.name}-{step}")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in_with_token(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#board:not([hidden])")


def click_on_map(page: Any, lon: float, lat: float) -> None:
    """A real click on the map's canvas, where that point is drawn."""
    x, y = page.evaluate(
        "([lat, lon]) => { const p = document.querySelector('#map').leafletMap"
        ".latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


# The wall's status colours (app.js STATUS_COLOURS) and the grey of a grid with none.
COLOURS = {
    "unstaffed": (0xC6, 0x28, 0x28),
    "assigned": (0xEF, 0x6C, 0x00),
    "arriving": (0xF9, 0xA8, 0x25),
    "mobilised": (0x2E, 0x7D, 0x32),
    "checked": (0x15, 0x65, 0xC0),
    "grey": (0x55, 0x55, 0x55),
}


def nearest_colour(rgb: tuple[int, int, int]) -> str:
    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(rgb, COLOURS[name], strict=True))

    return min(COLOURS, key=distance)


def pixel_at(page: Any, lon: float, lat: float) -> tuple[int, int, int]:
    """The colour on screen where the map draws (lon, lat)."""
    x, y = page.evaluate(
        "([lat, lon]) => { const p = document.querySelector('#map').leafletMap"
        ".latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    box = page.locator("#map").bounding_box()
    png = page.screenshot(clip={"x": box["x"] + x, "y": box["y"] + y, "width": 1, "height": 1})
    pixel = Image.open(io.BytesIO(png)).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    red, green, blue = (int(v) for v in pixel[:3])
    return red, green, blue


def confirm(page: Any) -> None:
    page.wait_for_selector("dialog#confirm[open]")
    page.click("dialog#confirm button[value=yes]")


# -- the command centre -------------------------------------------------------------------------


def test_a_district_commander_activates_watches_and_stands_down(
    site: Site,
    context: Any,
    engine: Engine,
    small_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    from mobilize.db import make_sessionmaker, transaction
    from mobilize.districts.importer import import_district

    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=now)
    token = make_user(engine, now, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/command", token)
    # Who is signed in, in words: the role's Chinese name and the place.
    assert page.inner_text("#who").endswith(f" · 区指挥中心 {small_bundle.district_code}")
    page.wait_for_selector("#mobilisation option", state="attached")
    assert page.locator("#mobilisation option").all_inner_texts() == ["（无进行中的动员）"]
    # In peacetime the map shows the district: every street and community outlined, the
    # communities named.
    areas = len(small_bundle.streets) + len(small_bundle.communities)
    page.wait_for_selector(f"#map[data-areas='{areas}']", state="attached")
    assert sorted(page.locator(".area-label").all_inner_texts()) == sorted(
        c.name for c in small_bundle.communities
    )
    shot(page, request, "peacetime")
    # Zoomed in on a community, its micro-grids appear.
    community = sorted(small_bundle.communities, key=lambda c: c.code)[0]
    centre = community.geom.representative_point()
    page.evaluate(
        "([lat, lon]) => { document.querySelector('#map').leafletMap.setView([lat, lon], 16); }",
        [centre.y, centre.x],
    )
    page.wait_for_function(
        "() => Number(document.querySelector('#map').dataset.microGrids || 0) > 0"
    )
    drawn = int(page.get_attribute("#map", "data-micro-grids") or 0)
    own = sum(
        1 for g in small_bundle.grids if g.level == "micro" and g.parent.startswith(community.code)
    )
    assert own <= drawn <= sum(1 for g in small_bundle.grids if g.level == "micro")
    shot(page, request, "peacetime-zoomed")
    page.fill("#act-title", "暴雨防汛战时动员")
    page.select_option("#act-kind", "FLOOD")
    page.select_option("#act-scope", "district")
    page.click("#activate-form button[type=submit]")
    # Nothing happens before the confirmation...
    page.wait_for_selector("dialog#confirm[open]")
    assert "暴雨防汛战时动员" in page.inner_text("dialog#confirm .text")
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Mobilisation)).scalar_one() == 0
    page.click("dialog#confirm button[value=yes]")
    page.wait_for_selector("#live:not([hidden])")
    page.wait_for_selector("#map[data-grids='240']", state="attached")
    # Standing down sits apart, well below the dispatch form, never next to it.
    dispatch_box = page.locator("#dispatch").bounding_box()
    stand_down_box = page.locator("#stand-down").bounding_box()
    assert stand_down_box["y"] - (dispatch_box["y"] + dispatch_box["height"]) >= 40
    with Session(engine) as session:
        m = session.scalars(select(Mobilisation)).one()
        assert (m.status, m.title, m.kind) == ("active", "暴雨防汛战时动员", "flood")
        states = dict(
            session.execute(
                select(GridState.status, func.count())
                .where(GridState.mobilisation_id == m.id)
                .group_by(GridState.status)
            ).all()
        )
    before = page.get_attribute("#map", "data-statuses") or ""
    painted = dict(p.split(":") for p in before.split())
    assert {k.lower(): int(v) for k, v in painted.items()} == states
    countdown = page.inner_text("#countdown")
    assert re.fullmatch(r"0[23]:\d\d:\d\d", countdown), countdown  # about three hours left
    page.wait_for_selector("#gauge-text:has-text('已到岗 0.0%')")
    shot(page, request, "activated")

    # A person checks in on their phone: the wall follows through the subscription.
    with Session(engine) as session:
        a = session.scalars(
            select(Assignment)
            .where(Assignment.mobilisation_id == m.id, Assignment.role == "minimum")
            .order_by(Assignment.id)
        ).first()
        assert a is not None
    write(engine, assignments.acknowledge, actor=phone(a), clock=now, assignment_id=a.id)
    check_in_at_centre(engine, a, now)
    expected = " ".join(
        f"{k.upper()}:{v}"
        for k, v in sorted(_grid_status_counts(engine, m.id).items(), key=lambda kv: kv[0].upper())
    )
    assert expected != before  # the check-in changed the grid's status...
    page.wait_for_selector(f"#map[data-statuses='{expected}']", state="attached")  # ...live
    # Zoomed out to the district, the grid someone reached shows its status's colour, not a
    # grey outline.
    with Session(engine) as session:
        on_site = session.get_one(Grid, a.grid_id).centre
        status = session.scalars(
            select(GridState.status).where(
                GridState.mobilisation_id == m.id, GridState.grid_id == a.grid_id
            )
        ).one()
    page.evaluate(
        "([lat, lon]) => { document.querySelector('#map').leafletMap.setView([lat, lon], 12); }",
        [on_site.y, on_site.x],
    )
    page.wait_for_timeout(300)  # the canvas redraws after the zoom's end
    seen = pixel_at(page, on_site.x, on_site.y)
    assert nearest_colour(seen) == status, (seen, status)
    shot(page, request, "district-zoom")

    # Dispatch a task to two grids chosen on the map.
    page.click("#dispatch summary")
    with Session(engine) as session:
        two = session.scalars(
            select(Grid.centre).where(Grid.level == "micro").order_by(Grid.id).limit(2)
        ).all()
    for c in two:
        click_on_map(page, c.x, c.y)
    assert page.inner_text("#chosen") == "2"
    assert page.get_attribute("#map", "data-outlined") == "2"
    page.select_option("#task-kind", "ORDER_KEEPING")
    page.fill("#task-title", "卡口值守")
    page.click("#dispatch-form button[type=submit]")
    page.wait_for_selector("#notice:has-text('已派发 2 项任务')")
    with Session(engine) as session:
        from mobilize.models import Task

        titles = session.scalars(
            select(Task.title).where(Task.mobilisation_id == m.id, Task.kind == "order_keeping")
        ).all()
    assert titles == ["卡口值守", "卡口值守"]

    page.click("#stand-down")
    confirm(page)
    page.wait_for_selector("#notice:has-text('已解除战时状态')")
    with Session(engine) as session:
        assert session.get_one(Mobilisation, m.id).status == "stood_down"
    # Peacetime again: the district's outlines are back, the grids' colours gone.
    page.wait_for_selector(f"#map[data-areas='{areas}'][data-grids='0']", state="attached")
    shot(page, request, "stood-down")
    # The English switch renames the role in the header too.
    page.click("#lang")
    assert page.inner_text("#who").endswith(
        f" · District command centre {small_bundle.district_code}"
    )


def _grid_status_counts(engine: Engine, mobilisation_id: int) -> dict[str, int]:
    with Session(engine) as session:
        return dict(
            session.execute(
                select(GridState.status, func.count())
                .where(GridState.mobilisation_id == mobilisation_id)
                .group_by(GridState.status)
            ).all()
        )


def test_a_street_commander_sees_their_street_only_and_accepts_a_fix(
    site: Site,
    context: Any,
    engine: Engine,
    small_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    m = activated(engine, small_bundle, now)
    street = small_bundle.streets[0].code
    with Session(engine) as session:
        street_id = session.scalar(select(Street.id).where(Street.code == street))
        mine = session.execute(
            select(func.count())
            .select_from(GridState)
            .where(GridState.mobilisation_id == m.id, GridState.street_id == street_id)
        ).scalar_one()
        total = session.execute(
            select(func.count()).select_from(GridState).where(GridState.mobilisation_id == m.id)
        ).scalar_one()
    assert 0 < mine < total
    token = make_user(engine, now, Role.STREET_COMMANDER, street)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/command", token)
    page.wait_for_selector(f"#map[data-grids='{mine}']", state="attached")
    # Their street, or one community of it.
    assert page.locator("#act-scope option").all_text_contents() == [
        f"{s.name} {s.code}" for s in small_bundle.streets if s.code == street
    ] + [
        f"{c.name} {c.code}"
        for c in sorted(small_bundle.communities, key=lambda c: c.code)
        if c.street == street
    ]
    # Two and a half hours on, nobody has answered: grids are at risk, with suggested fixes.
    now.advance(timedelta(minutes=150))
    page.reload()
    page.wait_for_selector("#risks button.accept")
    # The countdown follows the server's clock, not the screen's.
    page.wait_for_selector("#countdown:text-matches('^00:(29|30):[0-9]{2}$')")
    first = page.locator("#risks li").first
    grid_code = first.get_attribute("data-grid")
    first.locator("button.accept").click()
    page.wait_for_selector("#notice:has-text('已派')")
    with Session(engine) as session:
        pinned = session.scalars(
            select(Assignment)
            .join(Grid, Grid.id == Assignment.grid_id)
            .where(Assignment.mobilisation_id == m.id, Grid.code == grid_code, Assignment.pinned)
        ).all()
    assert len(pinned) == 1
    shot(page, request, "street")
    # In English the risk reasons are English too.
    page.click("#lang")
    page.wait_for_selector("#risks .reasons:has-text('nobody')")
    reasons = " ".join(page.locator("#risks .reasons").all_inner_texts())
    assert re.search(r"[\u4e00-\u9fff]", reasons) is None, reasons


def test_a_grid_named_like_markup_shows_its_name_as_text_on_the_map(
    site: Site, context: Any, engine: Engine, tiny_bundle: Bundle, now: ManualClock
) -> None:
    """Grid names come from an imported bundle: a tooltip shows the name as written and
    never makes an element of it."""
    m = activated(engine, tiny_bundle, now)
    named = '<img id="injected" src="x"><b>三号楼</b>'
    with transaction(make_sessionmaker(engine)) as session:
        grid_id = session.scalars(
            select(Grid.id).where(Grid.level == "micro").order_by(Grid.id)
        ).first()
        assert grid_id is not None
        session.execute(update(Grid).where(Grid.id == grid_id).values(name=named))
    assert m.id
    token = make_user(engine, now, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/command", token)
    page.wait_for_selector("#map[data-grids='20']", state="attached")
    page.evaluate(
        """(id) => { const map = document.querySelector('#map').leafletMap;
        map.eachLayer((l) => { if (String(l.gridId) === String(id))
          l.openTooltip(l.getBounds().getCenter()); }); }""",
        to_global_id("Grid", grid_id),
    )
    tooltip = page.wait_for_selector(".leaflet-tooltip")
    assert tooltip.text_content().endswith(named)
    assert (
        page.query_selector("#injected") is None
        and page.query_selector(".leaflet-tooltip b") is None
    )


# -- the phone ----------------------------------------------------------------------------------


@pytest.fixture
def called(engine: Engine, small_bundle: Bundle, now: ManualClock) -> tuple[Assignment, Any, Any]:
    """A person called to a micro-grid, the grid's centre (where they will stand) and phone."""
    m = activated(engine, small_bundle, now, scope="street:S01")
    with Session(engine) as session:
        a = session.scalars(
            select(Assignment)
            .where(Assignment.mobilisation_id == m.id, Assignment.role == "minimum")
            .order_by(Assignment.id)
        ).first()
        assert a is not None
        who = session.get(Responder, a.responder_id)
        centre = session.get_one(Grid, a.grid_id).centre
        session.expunge_all()
    return a, centre, who


def sign_in_on_phone(handset: Any, site: Site, phone_number: str, *, via: str = "") -> Any:
    """A new page on the handset, signed in with the code the phone was sent."""
    page = handset.new_page()
    page.goto(f"{via or site.url}/ui/phone")
    page.fill("#phone-number", phone_number)
    page.click("#phone-form button[type=submit]")
    page.wait_for_selector("#code-form:not([hidden])")
    page.fill("#code", site.outbox.code_for(phone_number))
    page.click("#code-form button[type=submit]")
    page.wait_for_selector("#home:not([hidden])")
    return page


def wait_for_service_worker(page: Any) -> None:
    """Until the service worker controls the page (so it has cached the page's files)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate("() => navigator.serviceWorker.controller !== null"):
        assert time.monotonic() < deadline, "the service worker never took the page"
        time.sleep(0.05)


def _checked_in(engine: Engine, assignment_id: int) -> tuple[str, int]:
    with Session(engine) as session:
        a = session.get(Assignment, assignment_id)
        assert a is not None
        events = session.execute(
            select(func.count())
            .select_from(Event)
            .where(Event.kind == "assignment.checked_in", Event.subject_id == str(a.responder_id))
        ).scalar_one()
        status = a.status
    return status, int(events or 0)


def test_a_cadre_signs_in_answers_and_checks_in_where_the_phone_says(
    site: Site,
    handset: Any,
    engine: Engine,
    called: tuple[Assignment, Any, Any],
    small_bundle: Bundle,
    request: pytest.FixtureRequest,
) -> None:
    a, _, who = called
    page = sign_in_on_phone(handset, site, who.phone)
    page.wait_for_selector("#mine:not([hidden])")
    assert page.inner_text("#my-status") == "待确认"
    assert page.locator("#teammates a[href^='tel:']").count() >= 1  # a tap calls them
    # 导航 opens the phone's map apps at the grid.
    assert page.get_attribute("#directions a[data-app=amap]", "href").startswith(
        "https://uri.amap.com/navigation?to="
    )
    assert page.inner_text("#directions a[data-app=baidu]") == "导航 · 百度地图"
    page.click("#acknowledge")
    page.wait_for_selector("#my-status:text('已确认，在途')")
    page.click("#check-in")
    page.wait_for_selector("#my-status:text('已到岗')")
    assert _checked_in(engine, a.id) == ("on_site", 1)
    # The cadre is told plainly that the check-in landed.
    assert "已到岗签到" in page.inner_text("#notice.success")
    # Households of the grid are listed; one is checked from the phone.
    shot(page, request, "on-site")
    first = page.locator(".task[data-kind=HOUSEHOLD_CHECK] .households li").first
    code = first.get_attribute("data-household")
    # Each line says where to knock: building, unit and door.
    h = small_bundle.households
    assert h.address[h.code.index(code or "")] in first.inner_text()
    # The list runs in the order a cadre walks: building, unit, door (numbers as numbers).
    listed = page.locator(".task[data-kind=HOUSEHOLD_CHECK] .households li").evaluate_all(
        "items => items.map(li => li.dataset.household)"
    )
    walk = sorted(listed, key=lambda c: _walking_key(h.address[h.code.index(c)]))
    assert listed == walk
    # Tags in words, not abbreviations.
    tagged = [c for c in listed if h.tags[h.code.index(c)] & HouseholdTag.ELDERLY.bit]
    if tagged:
        line = page.locator(
            f".task[data-kind=HOUSEHOLD_CHECK] li[data-household='{tagged[0]}']"
        ).inner_text()
        assert "老人" in line
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.post_data or "") if "/graphql" in r.url else None)
    first.locator("button[data-result=OK]").click()
    page.wait_for_selector(f".task[data-kind=HOUSEHOLD_CHECK] li.done[data-household='{code}']")
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(HouseholdRecord)).scalar_one() == 1
    # The answer marks that one line: a cadre records fifty in a row, each without a reload.
    assert [q for q in asked if "myTasks" in q] == []
    # The minute's look (also when the cadre comes back to the app) asks a few fields, and
    # reloads only when something changed.
    came_back = "document.dispatchEvent(new Event('visibilitychange'))"
    looked = "myTasks { id status } }"
    with page.expect_response(lambda r: looked in (r.request.post_data or "")):
        page.evaluate(came_back)
    write(
        engine,
        dispatch.dispatch,
        actor=district_commander(engine),
        clock=ManualClock(datetime.now(UTC)),
        mobilisation_id=a.mobilisation_id,
        kind="order_keeping",
        areas=dispatch.AreaChoice(grids=(grid_of(a),)),
    )
    page.evaluate(came_back)
    page.wait_for_selector(".task[data-kind=ORDER_KEEPING]")
    sent = [json.loads(q)["query"] for q in asked if "myTasks" in q]
    assert [looked in q for q in sent] == [True, True, False]  # look, look, reload
    page.click("#lang")
    assert page.inner_text("#my-status") == "On site"
    # Installable: a manifest with the icons an install needs, and a service worker for /ui/.
    scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{site.url}/ui/"
    manifest = page.evaluate("() => fetch('/ui/manifest.webmanifest').then(r => r.json())")
    assert (manifest["start_url"], manifest["display"]) == ("/ui/phone", "standalone")
    assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    shot(page, request, "phone")


def test_a_check_in_made_offline_is_sent_once_when_the_network_returns(
    site: Site,
    handset: Any,
    engine: Engine,
    called: tuple[Assignment, Any, Any],
    request: pytest.FixtureRequest,
) -> None:
    a, _, who = called
    cable = Cable(site.url)
    page = sign_in_on_phone(handset, site, who.phone, via=cable.url)
    page.click("#acknowledge")
    page.wait_for_selector("#my-status:text('已确认，在途')")
    # An installed PWA: the service worker holds the page's files before the signal goes.
    wait_for_service_worker(page)
    cable.pull_out()
    handset.set_offline(True)  # what the page's offline banner and `online` event read
    page.click("#check-in")
    page.wait_for_selector("#waiting:not([hidden])")
    assert "待发送 1 项" in page.inner_text("#waiting")
    assert "到岗签到" in page.inner_text("#waiting")
    assert page.inner_text("#my-status") == "已签到（待发送）"
    first = page.locator(".task[data-kind=HOUSEHOLD_CHECK] .households li").first
    code = first.get_attribute("data-household")
    first.locator("button[data-result=ABSENT]").click()
    assert "待发送 2 项" in page.inner_text("#waiting")
    # Opened again without network, the page comes from the service worker's cache (an
    # installed PWA) and the queue is still there.
    page.reload()
    page.wait_for_selector("#waiting:not([hidden])")
    assert "待发送 2 项" in page.inner_text("#waiting")
    shot(page, request, "offline")
    assert _checked_in(engine, a.id) == ("acknowledged", 0)
    cable.plug_in()
    handset.set_offline(False)
    # The `online` event sends the queue at once; the 10 s retry is the fallback.
    page.wait_for_selector("#waiting", state="hidden", timeout=2 * WAIT_MS)
    page.wait_for_selector("#my-status:text('已到岗')")
    page.wait_for_selector(f".task[data-kind=HOUSEHOLD_CHECK] li.done[data-household='{code}']")
    assert _checked_in(engine, a.id) == ("on_site", 1)
    with Session(engine) as session:
        results = session.scalars(select(HouseholdRecord.result)).all()
    assert results == ["absent"]
    shot(page, request, "synced")


# -- the reviewer -------------------------------------------------------------------------------


def test_the_replay_slider_shows_the_map_as_it_stood(
    site: Site,
    context: Any,
    engine: Engine,
    tiny_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    m = activated(engine, tiny_bundle, now)
    t0 = now.now()
    with Session(engine) as session:
        people = session.scalars(
            select(Assignment)
            .where(Assignment.mobilisation_id == m.id, Assignment.role == "minimum")
            .order_by(Assignment.id)
        ).all()
        session.expunge_all()
    # Everyone answers at T0+10 and arrives at T0+40; the district stands down at T0+60.
    now.set(t0 + timedelta(minutes=10))
    for a in people:
        write(engine, assignments.acknowledge, actor=phone(a), clock=now, assignment_id=a.id)
    now.set(t0 + timedelta(minutes=40))
    for a in people:
        check_in_at_centre(engine, a, now)
    now.set(t0 + timedelta(minutes=60))
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=now,
        mobilisation_id=m.id,
    )
    token = make_user(engine, now, Role.REVIEWER, tiny_bundle.district_code)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/review", token)
    page.wait_for_selector("#map[data-grids='20']", state="attached")
    assert page.get_attribute("#minute", "max") == "60"

    def slide(minute: int) -> str:
        page.eval_on_selector(
            "#minute",
            "(s, v) => { s.value = String(v); s.dispatchEvent(new Event('input')); }",
            minute,
        )
        page.wait_for_selector(f"#at:has-text('T0+{minute} ')")
        return page.get_attribute("#map", "data-statuses") or ""

    assert "MOBILISED" not in slide(5)
    assert "已到岗 0.0%" in page.inner_text("#gauge-text")
    assert slide(45) == "MOBILISED:20"
    assert "已到岗 100.0%" in page.inner_text("#gauge-text")
    # Every state's colour is in the legend, those with no grid too.
    assert page.locator("#by-status li").evaluate_all(
        "items => items.map(i => i.dataset.status)"
    ) == [
        "UNSTAFFED",
        "ASSIGNED",
        "ARRIVING",
        "MOBILISED",
        "CHECKED",
    ]
    # The curve's time axis is the slider's window: T0 at the track's left end, the stand-down
    # at its right end, and the marker where the slider stands (minute 45 of 60).
    track = page.locator("#minute").bounding_box()
    axis = page.evaluate(
        "() => { const r = document.querySelector('#curve line.axis').getBoundingClientRect();"
        " return [r.left, r.right]; }"
    )
    marker = page.evaluate(
        "() => document.querySelector('#curve line.marker').getBoundingClientRect().left"
    )
    assert abs(axis[0] - track["x"]) < 4 and abs(axis[1] - (track["x"] + track["width"])) < 4
    assert abs(marker - (axis[0] + (axis[1] - axis[0]) * 45 / 60)) < 2
    shot(page, request, "replay")
    with page.expect_download() as download:
        page.click("#download-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
    from openpyxl import load_workbook

    with open(download.value.path(), "rb") as f:
        book = load_workbook(f, read_only=True)
    assert "概要 Summary" in book.sheetnames


def test_a_cadre_who_cannot_come_says_why(
    site: Site,
    handset: Any,
    engine: Engine,
    called: tuple[Assignment, Any, Any],
    request: pytest.FixtureRequest,
) -> None:
    a, _, who = called
    page = sign_in_on_phone(handset, site, who.phone)
    page.wait_for_selector("#mine:not([hidden])")
    assert page.inner_text("#hours") == "累计 0.0 小时，积分 0.0"
    # "Other" without saying more is not a reason: nothing is sent.
    page.click("#decline")
    page.wait_for_selector("dialog#decline-dialog[open]")
    page.check("input[name=reason][value=其他]")
    page.click("dialog#decline-dialog button[value=yes]")
    page.wait_for_selector("#notice.error")
    # A reason from the list, with a word more.
    page.click("#decline")
    page.wait_for_selector("dialog#decline-dialog[open]")
    page.check("input[name=reason][value=家人需要照顾]")
    page.fill("#decline-note", "孩子发烧")
    shot(page, request, "decline-reasons")
    page.click("dialog#decline-dialog button[value=yes]")
    page.wait_for_selector("#no-assignment:not([hidden])")  # nothing to go to any more
    page.wait_for_selector("#waiting", state="hidden")
    with Session(engine) as session:
        mine = session.get(Assignment, a.id)
        assert mine is not None
        assert (mine.status, mine.reason) == ("declined", "家人需要照顾：孩子发烧")
        declined = session.scalars(
            select(Event.payload).where(Event.kind == "assignment.declined")
        ).all()
    assert len(declined) == 1  # sent once, with the reason the cadre chose


def test_a_volunteer_reports_in_on_the_phone_is_approved_and_takes_leave(
    site: Site,
    browser: Any,
    context: Any,
    engine: Engine,
    small_bundle: Bundle,
    script_errors: list[str],
    request: pytest.FixtureRequest,
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=site.clock)
    community = small_bundle.communities[0]
    newcomer = "13711112222"
    phone_ctx = new_context(browser, script_errors, viewport={"width": 390, "height": 844})
    phone = phone_ctx.new_page()
    phone.goto(f"{site.url}/ui/phone")
    phone.click("#report-in summary")
    phone.fill("#enrol-phone", newcomer)
    phone.click("#enrol-code-form button[type=submit]")
    phone.wait_for_selector("#enrol-form:not([hidden])")
    phone.fill("#enrol-code", site.outbox.code_for(newcomer))
    phone.select_option("#enrol-kind", "VOLUNTEER")
    phone.fill("#enrol-community", community.code)
    phone.fill("#enrol-name", "陈静")
    phone.fill("#enrol-address", "桂湖中路12号2栋1单元301")
    phone.fill("#enrol-skills", "急救，心理疏导")
    phone.check("#enrol-consent")
    phone.click("#enrol-form button[type=submit]")
    phone.wait_for_selector("#notice:text('等待社区审核')")
    shot(phone, request, "reported-in")

    # The secretary approves it from the queue on the command page.
    secretary = make_user(engine, site.clock, Role.COMMUNITY_SECRETARY, community.code)
    desk = context.new_page()
    sign_in_with_token(desk, f"{site.url}/ui/command", secretary)
    item = desk.locator("#queue-list li[data-enrolment]")
    assert "陈静" in item.inner_text() and newcomer in item.inner_text()
    item.locator("button.primary").click()
    desk.wait_for_selector("#queue-list li:text('没有待审核的报到')")
    shot(desk, request, "approved")

    # On the roster now: they sign in, take leave until a date, and come back.
    page = sign_in_on_phone(phone_ctx, site, newcomer)
    page.wait_for_selector("#leave-status:text('在岗')")
    page.select_option("#leave-reason", "CARING")
    page.fill("#leave-until", (site.clock.now() + timedelta(days=3)).strftime("%Y-%m-%d"))
    page.click("#leave-form button[type=submit]")
    page.wait_for_selector("#leave-status:text('请假中')")
    shot(page, request, "on-leave")
    page.click("#back-on-duty")
    page.wait_for_selector("#leave-status:text('在岗')")
    with Session(engine) as session:
        person = session.scalars(select(Responder).where(Responder.phone == newcomer)).one()
        leaves = session.scalars(select(Leave).where(Leave.responder_id == person.id)).all()
    assert person.name == "陈静" and person.skills == ["急救", "心理疏导"]
    assert [leave.reason for leave in leaves] == ["caring"] and leaves[0].ends_at is not None
    phone_ctx.close()


# -- GraphiQL -----------------------------------------------------------------------------------


def test_graphiql_loads_and_answers_with_nothing_from_another_host(
    site: Site,
    context: Any,
    engine: Engine,
    tiny_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=now)
    token = make_user(engine, now, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    elsewhere: list[str] = []

    def only_here(route: Any) -> None:
        url = route.request.url
        if url.startswith(site.url) or url.startswith("data:"):
            route.continue_()
        else:  # an intranet reaches no CDN
            elsewhere.append(url)
            route.abort()

    page = context.new_page()
    page.route("**/*", only_here)
    page.goto(f"{site.url}/graphql")
    page.wait_for_selector(".graphiql-container")
    # The token as a user pastes it in the headers tab.
    page.click("button:has-text('Headers')")
    headers = page.locator(".graphiql-editor-tool .CodeMirror").last
    headers.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(f'{{"Authorization": "Bearer {token}"}}')
    editor = page.locator(".graphiql-query-editor .CodeMirror").first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("{ district { name ")  # the editor closes the braces itself
    page.click(".graphiql-execute-button")
    page.wait_for_function(
        "() => document.querySelector('.graphiql-response')?.innerText.includes('\"name\"')"
    )
    assert tiny_bundle.district_name in page.inner_text(".graphiql-response")
    shot(page, request, "graphiql")
    assert elsewhere == []


@pytest.mark.parametrize("page_name", ["command", "review"])
def test_before_sign_in_only_the_sign_in_form_shows(
    site: Site, context: Any, page_name: str, request: pytest.FixtureRequest
) -> None:
    page = context.new_page()
    page.goto(f"{site.url}/ui/{page_name}")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.is_visible("#token-form")
    assert not page.is_visible("#board")  # hidden, whatever the wall layout's display says
    shot(page, request, "signed-out")


def test_a_notice_on_the_wall_does_not_move_the_map(
    site: Site,
    context: Any,
    engine: Engine,
    tiny_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=now)
    token = make_user(engine, now, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/command", token)
    before = page.locator("#map").bounding_box()
    page.evaluate(
        "() => import('/ui/static/app.js').then((m) => m.notice('一条很长的提示 a long notice'))"
    )
    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#map").bounding_box() == before
    shot(page, request, "notice")


def test_a_commander_switches_one_community_to_wartime(
    site: Site,
    context: Any,
    engine: Engine,
    small_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=now)
    community = sorted(small_bundle.communities, key=lambda c: c.code)[1]
    token = make_user(engine, now, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/command", token)
    page.wait_for_selector("#act-scope option[value^='community:']", state="attached")
    page.fill("#act-title", "积水小区排涝")
    page.select_option("#act-scope", f"community:{community.code}")
    page.click("#activate-form button[type=submit]")
    confirm(page)
    page.wait_for_selector("#live:not([hidden])")
    shot(page, request, "community")
    with Session(engine) as session:
        m = session.scalars(select(Mobilisation)).one()
        areas = session.scalars(
            select(Community.code)
            .join(MobilisationArea, MobilisationArea.community_id == Community.id)
            .where(MobilisationArea.mobilisation_id == m.id)
        ).all()
    assert areas == [community.code]


def test_a_cadre_reports_a_problem_from_the_phone(
    site: Site,
    handset: Any,
    engine: Engine,
    called: tuple[Assignment, Any, Any],
    request: pytest.FixtureRequest,
) -> None:
    a, _, who = called
    page = sign_in_on_phone(handset, site, who.phone)
    page.wait_for_selector("#mine:not([hidden])")
    page.click("#report-problem")
    page.wait_for_selector("dialog#problem-dialog[open]")
    page.fill("#problem-text", "3栋2单元有老人需要送医")
    shot(page, request, "problem")
    page.click("dialog#problem-dialog button[value=yes]")
    page.wait_for_selector("#notice.success")
    page.wait_for_selector("#waiting", state="hidden")
    for _ in range(50):
        with Session(engine) as session:
            reports = session.execute(
                select(ProblemReport.responder_id, ProblemReport.grid_id, ProblemReport.text)
            ).all()
        if reports:
            break
        time.sleep(0.1)
    assert [tuple(r) for r in reports] == [(a.responder_id, a.grid_id, "3栋2单元有老人需要送医")]


# -- the base map -------------------------------------------------------------------------------


class TileServer:
    """A tile server on this machine that answers every tile with one image and keeps the
    paths asked for, as a deployment's own Amap or Baidu mirror would be asked."""

    def __init__(self) -> None:
        image = (STATIC / "icon-192.png").read_bytes()
        self.asked: list[str] = []
        asked = self.asked

        class Tiles(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _tile_of(lon: float, lat: float, crs: str, zoom: int) -> tuple[int, int]:
    """The tile holding WGS-84 (lon, lat) on a `crs` tile server, worked out here apart from
    the page: the shift by geo.crs (numpy, the server's), the Mercator by pyproj."""
    (x_deg,), (y_deg,) = wgs84_to([lon], [lat], crs)
    if crs == "bd09":  # Baidu: Clarke 1866 Mercator, 1 m a pixel at 18, rows up from the equator
        mercator = pyproj.Transformer.from_crs(
            "EPSG:4326", "+proj=merc +a=6378206 +b=6356584.314245179 +units=m", always_xy=True
        )
        x, y = mercator.transform(x_deg, y_deg)
        size = 256 * 2 ** (18 - zoom)
        return math.floor(x / size), math.floor(y / size)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(
        x_deg, y_deg
    )
    half = 20037508.342789244
    size = 2 * half / 2**zoom
    return math.floor((x + half) / size), math.floor((half - y) / size)


@pytest.mark.parametrize("crs", ["gcj02", "bd09", None])
def test_a_base_map_puts_each_community_on_its_streets(
    engine: Engine,
    now: ManualClock,
    tiny_bundle: Bundle,
    context: Any,
    crs: str | None,
    request: pytest.FixtureRequest,
) -> None:
    tiles = TileServer()
    settings = Settings(
        base_map_url=f"{tiles.url}/{{z}}/{{x}}/{{y}}.png" if crs else None,
        base_map_crs=crs or "wgs84",
        base_map_attribution="© 测试底图 <b>test</b>",
    )
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=now)
    token = make_user(engine, now, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    app = create_app(settings, engine=engine, clock=now, notifier=Notifier([Outbox()]))
    hosts: set[str] = set()
    try:
        with serving(app) as port:
            page = context.new_page()
            page.on("request", lambda r: hosts.add(re.sub(r"^(\w+://[^/]+).*", r"\1", r.url)))
            sign_in_with_token(page, f"http://127.0.0.1:{port}/ui/command", token)
            areas = len(tiny_bundle.streets) + len(tiny_bundle.communities)
            page.wait_for_selector(f"#map[data-areas='{areas}']", state="attached")
            community = sorted(tiny_bundle.communities, key=lambda c: c.code)[0]
            lon, lat = (float(v) for v in shapely.get_coordinates(community.geom)[0])
            drawn = page.evaluate(
                "() => { const out = []; document.querySelector('#map').leafletMap.eachLayer("
                "(l) => { if (l.getLatLngs) out.push(...l.getLatLngs().flat(3).map("
                "(p) => [p.lng, p.lat])); }); return out; }"
            )
            (x,), (y,) = wgs84_to([lon], [lat], crs or "wgs84")
            # The community's corner is drawn where the tiles' system puts it, not as stored.
            assert any(abs(px - x) < 1e-9 and abs(py - y) < 1e-9 for px, py in drawn)
            if crs:
                assert not any(abs(px - lon) < 1e-6 and abs(py - lat) < 1e-6 for px, py in drawn)
                zoom = page.evaluate("() => document.querySelector('#map').leafletMap.getZoom()")
                tx, ty = _tile_of(lon, lat, crs, zoom)
                # The tile on screen under the corner is the one that holds it on the server.
                page.wait_for_selector("img.leaflet-tile-loaded", state="attached")
                under = page.evaluate(
                    "([lat, lon]) => { const map = document.querySelector('#map').leafletMap;"
                    " const box = map.getContainer().getBoundingClientRect();"
                    " const p = map.latLngToContainerPoint([lat, lon]);"
                    " const [x, y] = [box.left + p.x, box.top + p.y];"
                    " return [...document.querySelectorAll('img.leaflet-tile')].filter((img) => {"
                    " const r = img.getBoundingClientRect();"
                    " return r.left <= x && x < r.right && r.top <= y && y < r.bottom; })"
                    ".map((img) => new URL(img.src).pathname); }",
                    [y, x],
                )
                assert under == [f"/{zoom}/{tx}/{ty}.png"]
                # The tile service's terms, as text.
                assert page.inner_text(".leaflet-control-attribution") == "© 测试底图 <b>test</b>"
                shot(page, request, f"base-map-{crs}")
            else:
                assert tiles.asked == []
                assert not page.is_visible(".leaflet-control-attribution")
    finally:
        tiles.close()
    assert hosts <= {f"http://127.0.0.1:{port}", tiles.url}
    if not crs:
        assert hosts == {f"http://127.0.0.1:{port}"}  # nothing from outside


# -- the English switch -------------------------------------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")


def _data_texts(engine: Engine) -> list[str]:
    """Every text the district's data holds (names, addresses, titles, messages): what a page
    shows as written, in whatever language it was written. Longest first, to strip them."""
    from sqlalchemy import String, Text

    from mobilize.models import Base

    texts: set[str] = set()
    with Session(engine) as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, String | Text):
                    texts.update(
                        v for v in session.scalars(select(column).distinct()) if v and CJK.search(v)
                    )
    return sorted(texts, key=len, reverse=True)


def untranslated(page: Any, data: list[str]) -> list[str]:
    """Chinese left on the page in English, less the data's own texts and the switch back."""
    text = page.inner_text("body")
    for value in data:
        text = text.replace(value, " ")
    return [
        text[max(0, m.start() - 30) : m.end() + 30]
        for m in CJK.finditer(text)
        if m.group() != "中文"
    ]


def test_in_english_every_page_says_everything_in_english(
    site: Site,
    context: Any,
    handset: Any,
    engine: Engine,
    called: tuple[Assignment, Any, Any],
    small_bundle: Bundle,
    now: ManualClock,
    request: pytest.FixtureRequest,
) -> None:
    a, _, who = called
    write(engine, assignments.acknowledge, actor=phone(a), clock=now, assignment_id=a.id)
    check_in_at_centre(engine, a, now)
    english = "() => localStorage.setItem('mobilize.lang', 'en')"
    for ctx in (context, handset):
        ctx.add_init_script(f"try {{ ({english})(); }} catch {{}}")
    data = _data_texts(engine)
    commander = make_user(engine, now, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    page = context.new_page()
    sign_in_with_token(page, f"{site.url}/ui/command", commander)
    page.wait_for_selector("#risks li", state="attached")
    page.wait_for_selector("#live:not([hidden])")
    page.click("#dispatch summary")
    assert untranslated(page, data) == []
    shot(page, request, "command-en")
    reviewer = make_user(engine, now, Role.REVIEWER, small_bundle.district_code)
    review = context.new_page()
    sign_in_with_token(review, f"{site.url}/ui/review", reviewer)
    review.wait_for_selector("#summary dt", state="attached")
    review.wait_for_selector("#gauge-text:has-text('Mobilised')")  # drawn, and seen
    review.wait_for_selector("#map[data-statuses*='MOBILISED']", state="attached")
    assert untranslated(review, data) == []
    shot(review, request, "review-en")
    mine = sign_in_on_phone(handset, site, who.phone)
    mine.wait_for_selector("#mine:not([hidden])")
    mine.wait_for_selector(".households li", state="attached")
    assert untranslated(mine, data) == []
    shot(mine, request, "phone-en")
