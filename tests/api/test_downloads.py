"""The after-action report as a file (the reviewer page's download): the same policy and the
same place as the `afterActionReport` query."""

from __future__ import annotations

import io
import re

import httpx
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.mobilisation import switch
from tests.people import cast
from tests.wartime import activated, district_commander, write


def test_the_report_file_goes_to_those_who_may_read_it_for_their_place(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    m = activated(engine, small_bundle, clock)
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=m.id,
    )
    people = cast(engine, clock)
    gid = to_global_id("Mobilisation", m.id)
    with TestClient(create_app(engine=engine, clock=clock)) as client:

        def get(token: str | None, path: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.get(path, headers=headers)

        whole = get(people.reviewer, f"/reports/{gid}/report.xlsx")
        assert whole.status_code == 200
        assert whole.headers["content-disposition"] == f'attachment; filename="report-{m.id}.xlsx"'
        book = load_workbook(io.BytesIO(whole.content), read_only=True)
        streets = [row[0] for row in book["街道 Streets"].iter_rows(min_row=2, values_only=True)]
        assert sorted(streets) == sorted(s.code for s in small_bundle.streets)

        # A street commander gets their own street's report, as the query would answer.
        mine = get(people.street_commander, f"/reports/{gid}/report.md")
        assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/markdown")
        # The words, less the pictures inline (base64 may spell any code by chance).
        text = re.sub(r"\(data:image/[^)]*\)", "", mine.text)
        assert "data:image/png;base64," in mine.text  # the curve came along
        assert people.street in text and people.other_street not in text
        assert people.other_street in get(people.reviewer, f"/reports/{gid}/report.md").text

        refused = get(people.responder, f"/reports/{gid}/report.xlsx")
        assert (
            refused.status_code == 403
            and "afterActionReport" in refused.json()["errors"][0]["message"]
        )
        assert get(None, f"/reports/{gid}/report.xlsx").status_code == 401
        assert get("not-a-token", f"/reports/{gid}/report.xlsx").status_code == 401
        wrong = get(people.reviewer, f"/reports/{gid}/report.pdf")
        assert wrong.status_code == 400 and "pdf" in wrong.json()["errors"][0]["message"]
        street_id = to_global_id("Street", 1)
        bad = get(people.reviewer, f"/reports/{street_id}/report.md")
        assert bad.status_code == 400 and "Mobilisation ID" in bad.json()["errors"][0]["message"]
        missing = get(people.reviewer, f"/reports/{to_global_id('Mobilisation', 999)}/report.md")
        assert missing.status_code == 404


def test_names_and_titles_people_wrote_stay_text_in_the_downloaded_reports(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """A title that is markup and a grid named like a link and a spreadsheet formula come out
    as their words: escaped in the Markdown, plain strings (not formulas) in the workbook."""
    from sqlalchemy import update

    from mobilize.db import make_sessionmaker, transaction
    from mobilize.models import Community, Mobilisation

    m = activated(engine, tiny_bundle, clock)
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(
            update(Mobilisation).values(title='<img src=x onerror="alert(1)"> **演练**')
        )
        session.execute(update(Community).values(name='=HYPERLINK("http://evil.example","点我")'))
    token = cast_reviewer(engine, clock, tiny_bundle)
    gid = to_global_id("Mobilisation", m.id)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        text = client.get(f"/reports/{gid}/report.md", headers=headers).text
        book = load_workbook(
            io.BytesIO(client.get(f"/reports/{gid}/report.xlsx", headers=headers).content)
        )
    heading = text.splitlines()[0]
    assert heading.endswith(r'\<img src=x onerror="alert(1)"\> \*\*演练\*\*'), heading
    assert "<img" not in text.replace(r"\<img", "") and "http://" not in text
    cells = [c for row in book["社区 Communities"].iter_rows(min_row=2) for c in row]
    names = [c for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert names and all(c.data_type == "s" for c in names)


def cast_reviewer(engine: Engine, clock: ManualClock, bundle: Bundle) -> str:
    from mobilize.models import Role
    from tests.people import make_user

    return make_user(engine, clock, Role.REVIEWER, bundle.district_code)
