"""The GraphQL executor, with each subscription event planned afresh.

graphql-core 3.3 remembers, for one execution, which sub-fields a selection needs, keyed by
the identity of lists it keeps alive until the execution ends. A subscription's per-event
executors are shallow copies of the subscription's own and share that memo, so every event
heard added entries that lived as long as the subscription. A command centre's screen stays
subscribed all morning and hears tens of thousands of events: the soak saw each API process
grow by about 3 MB a minute. Each event gets its own memo here, dropped with the event
(tests/live/test_live.py holds the server to that)."""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql import Executor


class PerEventMemoExecutor(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Executor:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor
