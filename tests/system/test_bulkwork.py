"""Bulk work pauses the cycle collector and always gives it back as it found it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from mobilize.bulkwork import without_gc_pauses
from mobilize.bundle import read_bundle
from mobilize.bundle.problems import BundleInvalid


def test_the_collector_is_paused_inside_and_back_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), without_gc_pauses():
        assert not gc.isenabled()
        with without_gc_pauses():  # nested: still paused when the inner block ends
            pass
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_bundle_that_fails_to_read_leaves_the_collector_running(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleInvalid):
        read_bundle(tmp_path)
    assert gc.isenabled()
