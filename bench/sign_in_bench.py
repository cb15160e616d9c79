"""Sign-in timing: a registered and an unregistered phone, asked for codes and tried with a
wrong one, alternately, through the real app (TestClient, embedded SQLite). Their timings
must overlap: a caller must not tell which phones are registered by how long the answer
takes. Prints JSON: each path's p10/p50/p90 in ms, and the ratio of the medians.

    python bench/sign_in_bench.py --rounds 300 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from mobilize.api.app import create_app
from mobilize.auth.ratelimit import MemoryCounter, RateLimiter
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.notify import Message, Notifier
from mobilize.settings import Settings

REQUEST = "mutation($p: String!) { requestSignInCode(phone: $p) { __typename } }"
TRY = 'mutation($p: String!) { signInWithCode(phone: $p, code: "000000") { __typename } }'


class SlowChannel:
    """A message channel that takes as long as an SMS gateway might."""

    name = "slow"

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str = "") -> None:
        time.sleep(0.05)


def percentiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=10)
    return {
        "p10": round(q[0], 2),
        "p50": round(statistics.median(values), 2),
        "p90": round(q[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        clock = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))
        bundle = generate_district(PRESETS["tiny"], seed=7)
        with transaction(make_sessionmaker(engine)) as session:
            import_district(session, bundle=bundle, actor="bench", clock=clock)
        roomy = "1000000/60"
        settings = Settings(
            rate_limit_per_address=roomy,
            sign_in_requests_per_phone=roomy,
            sign_in_codes_per_phone=roomy,
            sign_in_requests_per_address=roomy,
            sign_in_tries_per_phone=roomy,
            sign_in_tries_per_address=roomy,
        )
        app = create_app(
            settings, engine=engine, clock=clock, notifier=Notifier([SlowChannel()]),
            limiter=RateLimiter(MemoryCounter()),
        )  # fmt: skip
        phones = {"registered": bundle.responders[0].phone, "unregistered": "13000000000"}
        timings: dict[str, dict[str, list[float]]] = {k: {"request": [], "try": []} for k in phones}
        with TestClient(app) as client:
            for i in range(args.rounds):
                for kind, phone in sorted(phones.items(), key=lambda kv: (kv[0] < "s") ^ (i % 2)):
                    for step, query in (("request", REQUEST), ("try", TRY)):
                        began = time.perf_counter()
                        client.post("/graphql", json={"query": query, "variables": {"p": phone}})
                        timings[kind][step].append((time.perf_counter() - began) * 1000)
        engine.dispose()
    report: dict[str, Any] = {"rounds": args.rounds}
    for step in ("request", "try"):
        known, unknown = timings["registered"][step], timings["unregistered"][step]
        report[step] = {
            "registered_ms": percentiles(known),
            "unregistered_ms": percentiles(unknown),
            "median_ratio": round(statistics.median(known) / statistics.median(unknown), 3),
        }
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
