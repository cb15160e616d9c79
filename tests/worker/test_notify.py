"""Notification channels against a local HTTP server: WeCom group robot, JSON webhook,
retries with backoff, and delivery that never holds up a mutation."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.models import Mobilisation, Notification, Role
from mobilize.notify import JsonWebhook, LogChannel, Message, Notifier, WeComRobot
from mobilize.outbox import deliver, enqueue
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user


class Receiver:
    """A local HTTP endpoint: records each request, answers from a script (status, body),
    and can hold requests until released."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                receiver.arrived.set()
                receiver.release.wait(30)
                status, answer = receiver.script.pop(0) if receiver.script else (200, {})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.release.set()
    r.server.shutdown()


def queue(engine: Engine, clock: ManualClock, *messages: Message) -> list[str]:
    with transaction(make_sessionmaker(engine)) as session:
        return enqueue(session, clock=clock, messages=list(messages))


def row(engine: Engine) -> Notification:
    with Session(engine) as session:
        return session.scalars(select(Notification)).one()


ESCALATION = Message(to="street:S01", kind="escalation", text="3个微网格预计无法按时到岗")


def test_wecom_robot_sends_markdown_and_text(
    engine: Engine, clock: ManualClock, receiver: Receiver
) -> None:
    factory = make_sessionmaker(engine)
    queue(engine, clock, ESCALATION, Message(to="13900000001", kind="assignment", text="到岗"))
    robot = WeComRobot(receiver.url, style="markdown")
    receiver.script = [(200, {"errcode": 0, "errmsg": "ok"})]
    assert deliver(factory, notifier=Notifier([robot]), clock=clock) == 2
    (body,) = receiver.bodies()  # the phone message is not the command group's business
    assert body["msgtype"] == "markdown"
    assert (
        "到岗预警" in body["markdown"]["content"] and ESCALATION.text in body["markdown"]["content"]
    )

    queue(engine, clock, ESCALATION)
    receiver.script = [(200, {"errcode": 0, "errmsg": "ok"})]
    deliver(factory, notifier=Notifier([WeComRobot(receiver.url, style="text")]), clock=clock)
    assert receiver.bodies()[-1] == {"msgtype": "text", "text": {"content": ESCALATION.text}}


def test_what_people_wrote_reaches_the_wecom_group_as_words_not_markup() -> None:
    """A problem report with markup, a link and a line that would start a heading: WeCom gets
    our one coloured title and, quoted, the words; no tag, link or heading of theirs."""
    written = '<font color="warning">紧急</font> [点我](http://evil.example) **粗**\n# 标题'
    message = Message(to="street:S01", kind="problem", text=f"报告问题：{written}")
    content = WeComRobot("http://unused", style="markdown").payload(message)["markdown"]
    assert isinstance(content, dict)
    text = content["content"]
    assert text.count("<font") == 1 and text.count("</font>") == 1  # ours, the title's
    assert "](" not in text and "http://" not in text and "**粗**" not in text
    lines = text.split("\n")
    assert lines[1:] == [
        '> 报告问题：＜font color="warning"＞紧急＜/font＞ '
        "［点我］（http：//evil.example） ＊＊粗＊＊",
        "> ＃ 标题",
    ]
    plain = WeComRobot("http://unused", style="text").payload(message)["text"]
    assert isinstance(plain, dict) and "http://" not in plain["content"]


def test_a_failing_channel_is_retried_with_backoff_and_others_are_not_repeated(
    engine: Engine, clock: ManualClock, receiver: Receiver
) -> None:
    factory = make_sessionmaker(engine)
    logged: list[Message] = []

    class Counting(LogChannel):
        def send(self, message: Message, *, key: str) -> None:
            logged.append(message)

    notifier = Notifier([Counting(), WeComRobot(receiver.url)])
    queue(engine, clock, ESCALATION)
    receiver.script = [(200, {"errcode": 45009, "errmsg": "api freq out of limit"})]
    assert deliver(factory, notifier=notifier, clock=clock) == 0
    first = row(engine)
    assert first.status == "pending" and first.attempts == 1 and first.delivered == ["log"]
    assert "45009" in (first.last_error or "")
    assert first.next_attempt_at == clock.now() + timedelta(seconds=30)

    clock.advance(timedelta(seconds=29))
    assert deliver(factory, notifier=notifier, clock=clock) == 0  # not yet due
    assert len(receiver.requests) == 1

    clock.advance(timedelta(seconds=1))
    receiver.script = [(500, {})]  # the second try fails too: a longer wait
    deliver(factory, notifier=notifier, clock=clock)
    second = row(engine)
    assert second.attempts == 2 and second.next_attempt_at == clock.now() + timedelta(seconds=60)

    clock.advance(timedelta(seconds=60))
    receiver.script = [(200, {"errcode": 0, "errmsg": "ok"})]
    assert deliver(factory, notifier=notifier, clock=clock) == 1
    done = row(engine)
    assert done.status == "sent" and done.delivered == ["log", "wecom"]
    assert len(logged) == 1  # the log took it the first time and was not asked again


def test_a_message_that_keeps_failing_is_marked_failed(
    engine: Engine, clock: ManualClock, receiver: Receiver
) -> None:
    factory = make_sessionmaker(engine)
    queue(engine, clock, ESCALATION)
    notifier = Notifier([JsonWebhook(receiver.url)])
    for _ in range(3):
        receiver.script = [(503, {})]
        deliver(factory, notifier=notifier, clock=clock, max_attempts=3)
        clock.advance(timedelta(hours=1))
    failed = row(engine)
    assert failed.status == "failed" and failed.attempts == 3
    assert "HTTP 503" in (failed.last_error or "")
    assert deliver(factory, notifier=notifier, clock=clock, max_attempts=3) == 0


def test_the_webhook_posts_json_with_a_key_and_a_signature(
    engine: Engine, clock: ManualClock, receiver: Receiver
) -> None:
    queue(engine, clock, Message(to="13900000001", kind="assignment", text="请到 G01 到岗"))
    notifier = Notifier([JsonWebhook(receiver.url, secret="s3cret")])
    assert deliver(make_sessionmaker(engine), notifier=notifier, clock=clock) == 1
    ((headers, body),) = receiver.requests
    sent = json.loads(body)
    assert sent == {
        "id": f"mobilize-notification-{row(engine).id}",
        "kind": "assignment",
        "to": "13900000001",
        "text": "请到 G01 到岗",
    }
    assert headers["Idempotency-Key"] == sent["id"]
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Mobilize-Signature"] == f"sha256={expected}"


def test_a_slow_channel_never_holds_up_a_mutation(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, receiver: Receiver
) -> None:
    """The webhook holds every request until released; the activation (which notifies
    everyone) answers meanwhile, and the messages go out once the receiver lets them."""
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    notifier = Notifier([LogChannel(), JsonWebhook(receiver.url)])
    dispatcher = InProcessDispatcher(engine, notifier, clock)
    app = create_app(
        Settings(), engine=engine, clock=clock, notifier=notifier, dispatcher=dispatcher
    )
    token = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    receiver.release.clear()
    with TestClient(app) as client:
        answer = client.post(
            "/graphql",
            json={
                "query": "mutation { activateMobilisation(scope: {district: true}, kind: FLOOD, "
                'title: "防汛") { __typename } }'
            },
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert answer["data"]["activateMobilisation"]["__typename"] == "Mobilisation"
        assert receiver.arrived.wait(10)  # delivery had started, and is still held
        assert not receiver.release.is_set()
        with Session(engine) as session:
            assert session.scalars(select(Notification.status)).all()  # queued, committed
        # another mutation goes through while the webhook still hangs
        again = client.post(
            "/graphql",
            json={"query": "mutation { signOut { __typename } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert again.status_code == 200
        receiver.release.set()
        dispatcher.wait()
    with Session(engine) as session:
        assert set(session.scalars(select(Notification.status))) == {"sent"}
    assert len(receiver.requests) == len({b["id"] for b in receiver.bodies()}) > 0


class Recorder:
    """A channel that takes every message and remembers the order."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str) -> None:
        self.sent.append(message)


def calls(n: int, prefix: str) -> list[Message]:
    return [Message(to=f"{prefix}{i:05d}", kind="assignment", text="请到岗") for i in range(n)]


def test_a_dispatch_sends_its_whole_batch_and_a_backlog_drains_in_one_go(
    engine: Engine, clock: ManualClock
) -> None:
    """An activation's batch of 1,234 calls goes out in one dispatch (not 500 of them, the
    rest a beat tick each); after an outage 2,000 waiting messages go in one retry."""
    factory = make_sessionmaker(engine)
    recorder = Recorder()
    [batch] = queue(engine, clock, *calls(1234, "139"))
    queue(engine, clock, *calls(300, "138"))  # another batch: not this dispatch's
    assert deliver(factory, notifier=Notifier([recorder]), clock=clock, batches=[batch]) == 1234
    assert {m.to[:3] for m in recorder.sent} == {"139"}
    queue(engine, clock, *calls(1700, "137"))
    assert deliver(factory, notifier=Notifier([recorder]), clock=clock) == 2000
    with Session(engine) as session:
        assert set(session.scalars(select(Notification.status))) == {"sent"}


def test_live_mobilisations_go_first_and_a_stand_down_cancels_its_waiting_calls(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """Calls of a live mobilisation are not queued behind other messages; a stood-down
    mobilisation's unsent calls are never sent, and the record says so."""
    from mobilize.mobilisation import switch
    from tests.wartime import activated, district_commander

    m = activated(engine, tiny_bundle, clock)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:  # older messages of no mobilisation, waiting
        enqueue(session, clock=clock, messages=calls(700, "old-"))
    with transaction(factory) as session:  # then a live mobilisation's calls
        enqueue(session, clock=clock, messages=calls(50, "live-"), mobilisation_id=m.id)
    recorder = Recorder()
    deliver(factory, notifier=Notifier([recorder]), clock=clock)
    order = [x.to for x in recorder.sent]
    last_live = max(i for i, to in enumerate(order) if to.startswith("live-"))
    first_old = min(i for i, to in enumerate(order) if to.startswith("old-"))
    assert last_live < first_old, "the live mobilisation's calls went first"
    assert len(order) == len(set(order)) and sum(t.startswith("old-") for t in order) == 700

    with transaction(factory) as session:  # calls nobody sent yet when it stands down
        enqueue(session, clock=clock, messages=calls(40, "late-"), mobilisation_id=m.id)
    with transaction(factory) as session:
        switch.stand_down(
            session, actor=district_commander(engine), clock=clock, mobilisation_id=m.id
        )
    before = len(recorder.sent)
    deliver(factory, notifier=Notifier([recorder]), clock=clock)
    after = recorder.sent[before:]
    assert not [x for x in after if x.to.startswith("late-")]
    assert {x.kind for x in after} <= {"stand_down"}  # the thank-you still goes
    with Session(engine) as session:
        cancelled = session.execute(
            select(func.count()).where(
                Notification.mobilisation_id == m.id, Notification.status == "cancelled"
            )
        ).scalar_one()
        stood = session.get(Mobilisation, m.id)
    assert cancelled >= 40
    assert stood is not None and stood.final_state is not None
    assert stood.final_state["messages_cancelled"] == cancelled
