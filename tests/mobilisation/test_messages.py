"""What a called person reads: the place said once, however the grid is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from mobilize.mobilisation.engine import Placement
from mobilize.mobilisation.messages import assignment_message


@pytest.mark.parametrize(
    ("grid_name", "said"),
    [
        ("马家社区第10网格3号微网格", "到达马家社区第10网格3号微网格（"),  # named after it
        ("桂湖花园", "到达马家社区桂湖花园（"),  # a name of its own
    ],
)
def test_the_community_is_named_once_in_the_call(grid_name: str, said: str) -> None:
    t0 = datetime(2026, 7, 1, 0, 30, tzinfo=UTC)
    mobilisation = SimpleNamespace(
        title="暴雨防汛", kind="flood", deadline=t0 + timedelta(hours=3), t0=t0
    )
    message = assignment_message(
        mobilisation,  # type: ignore[arg-type]
        SimpleNamespace(name="刘洋", phone="13900000000"),
        SimpleNamespace(name=grid_name, code="S01C001G10M03"),
        SimpleNamespace(name="马家社区", code="S01C001"),
        Placement(1, 1, "minimum", 12.4, 900.0, "walk"),
        "Asia/Shanghai",
    )
    assert said in message.text
    assert "马家社区马家社区" not in message.text
    assert "请于11:30前" in message.text  # the deadline in Beijing time
