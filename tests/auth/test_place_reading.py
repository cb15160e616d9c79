"""A scope argument narrows the caller's place, never widens it; what each role may ask
about, read from one district in wartime shared by the tests here (they change nothing).

Each expectation is written here from the bundle and the roles, never read from the policy or
the scope code under test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_engine
from tests.conftest import wipe
from tests.places import PER_PLACE, ROLES, World, ask, first_frame, places_of, refused, world_in


@pytest.fixture(scope="module")
def w(migrated_url: str, small_bundle: Bundle) -> Iterator[World]:
    """One world for the module: nothing here changes it."""
    engine = make_engine(migrated_url)
    try:
        yield from world_in(engine, small_bundle, ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC)))
    finally:
        wipe(engine)
        engine.dispose()


def test_a_secretary_asking_for_their_street_is_refused_and_sees_nothing_of_it(w: World) -> None:
    own_street = w.street_of[w.people.community]
    for name, query in PER_PLACE.items():
        body = ask(w, "community_secretary", query, m=w.mobilisation, s=w.street[own_street])
        assert refused(body, "FORBIDDEN"), (name, body)
        assert "wider than your place" in body["errors"][0]["message"]
        # their own community, asked for by name or by default, is answered
        for asked in ({"c": w.community[w.people.community]}, {}):
            body = ask(w, "community_secretary", query, m=w.mobilisation, **asked)
            assert "errors" not in body and body["data"][name] is not None, (name, asked, body)


def test_a_scope_argument_narrows_within_the_place_and_never_leaves_it(w: World) -> None:
    mine = w.people.street
    theirs = w.people.other_street
    inside = next(c for c, s in sorted(w.street_of.items()) if s == mine)
    outside = next(c for c, s in sorted(w.street_of.items()) if s == theirs)
    for name, query in PER_PLACE.items():
        # narrower than the caller's place: answered
        for role, args in (
            ("street_commander", {"c": w.community[inside]}),
            ("district_commander", {"s": w.street[theirs]}),
            ("reviewer", {"c": w.community[outside]}),
        ):
            body = ask(w, role, query, m=w.mobilisation, **args)
            assert "errors" not in body and body["data"][name] is not None, (name, role, body)
        # beside or above it: refused, no data
        for role, args in (
            ("street_commander", {"s": w.street[theirs]}),
            ("street_commander", {"c": w.community[outside]}),
            ("community_secretary", {"c": w.community[next(
                c for c in sorted(w.street_of) if c != w.people.community)]}),
        ):  # fmt: skip
            body = ask(w, role, query, m=w.mobilisation, **args)
            assert refused(body), (name, role, args, body)


def test_coverage_of_a_narrower_place_counts_only_its_grids(w: World, small_bundle: Bundle) -> None:
    general = {g.code: g.parent for g in small_bundle.grids if g.level == "general"}
    micro_in = {c: 0 for c in w.street_of}
    for g in small_bundle.grids:
        if g.level == "micro":
            micro_in[general[g.parent]] += 1
    street_total = sum(n for c, n in micro_in.items() if w.street_of[c] == w.people.street)
    got = ask(w, "street_commander", PER_PLACE["coverage"], m=w.mobilisation)
    assert got["data"]["coverage"]["grids"] == street_total
    got = ask(
        w, "street_commander", PER_PLACE["coverage"], m=w.mobilisation,
        c=w.community[w.people.community],
    )  # fmt: skip
    assert got["data"]["coverage"]["grids"] == micro_in[w.people.community]


def test_a_secretary_subscribing_to_their_street_gets_one_error_and_no_coverage(w: World) -> None:
    own_street = w.street_of[w.people.community]
    document = """subscription($m: ID!, $s: ID) { coverageChanged(mobilisation: $m,
        street: $s) { grids } }"""
    with w.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(
            {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {w.people.community_secretary}"},
            }
        )
        assert ws.receive_json()["type"] == "connection_ack"
        variables = {"m": w.mobilisation, "s": w.street[own_street]}
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": document, "variables": variables}}
        )
        message = ws.receive_json()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")


def test_every_scope_argument_of_every_query_answers_inside_the_place_only(w: World) -> None:
    place = places_of(w)
    subscription = """subscription($m: ID!, $s: ID, $c: ID) { coverageChanged(mobilisation: $m,
        street: $s, community: $c) { grids } }"""
    asked: list[tuple[str, dict[str, str], set[str]]] = [
        ("s", {"s": w.street[s]}, {c for c, cs in w.street_of.items() if cs == s})
        for s in sorted(w.street)
    ] + [("c", {"c": w.community[c]}, {c}) for c in sorted(w.community)]
    for role in ROLES:
        for _, args, covers in asked:
            allowed = bool(place[role]) and covers <= place[role]
            for name, query in PER_PLACE.items():
                body = ask(w, role, query, m=w.mobilisation, **args)
                if allowed:
                    assert "errors" not in body and body["data"][name] is not None, (
                        name, role, covers, body)  # fmt: skip
                else:
                    assert refused(body), (name, role, covers, body)
            frame = first_frame(w, role, subscription, {"m": w.mobilisation, **args})
            assert (frame["type"] == "next") is allowed, (role, covers, frame)
            if not allowed:
                codes = {e["extensions"]["code"] for e in frame["payload"]}
                assert codes <= {"FORBIDDEN", "NOT_FOUND"}, frame


def test_filter_arguments_only_narrow_what_each_role_sees(w: World, small_bundle: Bundle) -> None:
    """`communities(street:)`, `grids(community:)` and `pairings(community:)` inside a place
    count the bundle's rows there; outside it, nothing."""
    place = places_of(w)
    grids_in = {c: 0 for c in w.street_of}
    general = {g.code: g.parent for g in small_bundle.grids if g.level == "general"}
    for g in small_bundle.grids:
        grids_in[g.parent if g.level == "general" else general[g.parent]] += 1
    pairings_in = {c: 0 for c in w.street_of}
    for p in small_bundle.pairings:
        pairings_in[p.community] += 1
    for role in ROLES:
        if role == "responder":
            continue  # refused outright: the operation matrix in test_access says so
        for street in w.street:
            got = ask(w, role, "query($s: ID) { communities(street: $s) { totalCount } }",
                      s=w.street[street])["data"]["communities"]["totalCount"]  # fmt: skip
            mine = {c for c, s in w.street_of.items() if s == street} & place[role]
            assert got == len(mine), (role, street)
        for community, gid in w.community.items():
            inside = community in place[role]
            got = ask(w, role, "query($c: ID) { grids(community: $c) { totalCount } }",
                      c=gid)["data"]["grids"]["totalCount"]  # fmt: skip
            assert got == (grids_in[community] if inside else 0), (role, community)
            got = ask(w, role, "query($c: ID) { pairings(community: $c) { totalCount } }",
                      c=gid)["data"]["pairings"]["totalCount"]  # fmt: skip
            assert got == (pairings_in[community] if inside else 0), (role, community)


def test_a_streets_report_keeps_the_districts_figures_out_of_its_timeline(w: World) -> None:
    query = """query($m: ID!) { afterActionReport(mobilisation: $m) {
        timeline { kind payload } } }"""
    whole = ask(w, "district_commander", query, m=w.mobilisation)["data"]["afterActionReport"]
    activated = [t for t in whole["timeline"] if t["kind"] == "mobilisation.activated"]
    assert activated and "figures" in activated[0]["payload"]
    mine = ask(w, "street_commander", query, m=w.mobilisation)["data"]["afterActionReport"]
    activated = [t for t in mine["timeline"] if t["kind"] == "mobilisation.activated"]
    assert activated and set(activated[0]["payload"]) <= {
        "kind", "title", "scope", "t0", "deadline", "rule"}  # fmt: skip
