"""Messages out after an activation: a whole district switched to wartime, then every call it
wrote handed to the log channel by one dispatch, timed from the solve's commit. Beside it, the
bare channel: the same messages sent from a list, no database. Prints JSON.

    python bench/outbox_bench.py --preset xindu --json
    python bench/outbox_bench.py --preset xindu --postgis --json

Goal (issue 23): a xindu activation's ~21,000 messages all handed to the channel within
2 minutes of the commit. The drill's `messages_per_second` comes from this figure."""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from scratch import scratch_postgis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.logs import configure_logging
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import District, Notification, Role
from mobilize.notify import LogNotifier, Message
from mobilize.outbox import deliver

CLOCK = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="xindu", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # The log channel writes each message as the service would: formatted, to a stream.
    configure_logging("json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    with ExitStack() as stack:
        if args.postgis:
            url = stack.enter_context(scratch_postgis())
        else:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'b.db'}"
        engine = make_engine(url)
        upgrade(engine)
        bundle = generate_district(PRESETS[args.preset], seed=args.seed)
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            import_district(session, bundle=bundle, actor="bench", clock=CLOCK)
        with Session(engine) as session:
            district = session.scalars(select(District.id)).one()
        commander = Actor(
            user_id=1,
            name="bench",
            bindings=(Binding(Role.DISTRICT_COMMANDER, district, district),),
        )
        outcome = switch.activate_in_process(
            factory, clock=CLOCK, display_tz="Asia/Shanghai", worker="bench", actor=commander,
            scope=AreaScope.parse("district"), kind="epidemic", title="演练",
        )  # fmt: skip
        committed = time.perf_counter()  # the solve's transaction has just committed
        sent = deliver(factory, notifier=LogNotifier(), clock=CLOCK, batches=outcome.batches)
        took = time.perf_counter() - committed
        with Session(engine) as session:
            rows = session.execute(
                select(Notification.recipient, Notification.kind, Notification.text)
            ).all()
            waiting = session.scalar(select(func.count()).where(Notification.status == "pending"))
        engine.dispose()
    channel = LogNotifier().channels[0]
    messages = [Message(to=r.recipient, kind=r.kind, text=r.text) for r in rows]
    began = time.perf_counter()
    for i, message in enumerate(messages):
        channel.send(message, key=f"bare-{i}")
    bare = time.perf_counter() - began
    report = {
        "preset": args.preset,
        "backend": "postgis" if args.postgis else "sqlite",
        "messages": sent,
        "left_waiting": waiting,
        "seconds_commit_to_all_handed": round(took, 2),
        "messages_per_second": round(sent / took, 1) if took else None,
        "bare_channel_seconds": round(bare, 2),
        "ratio_to_bare": round(took / bare, 2) if bare else None,
        "goal_seconds": 120,
    }
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
