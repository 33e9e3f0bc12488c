"""Interpreter settings for bulk work: changed inside the blocks, restored after the last."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from syllabus.blobs.tuning import SWITCH_INTERVAL, bulk, gc_paused, short_switch_interval


def test_switch_interval_is_short_inside_and_restored_after_the_last_user() -> None:
    before = sys.getswitchinterval()
    with short_switch_interval():
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
        with short_switch_interval():  # nested: the inner exit restores nothing
            pass
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
    assert sys.getswitchinterval() == before


def test_overlapping_users_in_threads_restore_the_original() -> None:
    """Two threads whose blocks overlap (not nested): the first to leave must not restore
    the setting under the second, nor the second restore the first's short value."""
    before = sys.getswitchinterval()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[float] = []

    def first() -> None:
        with short_switch_interval(), gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with short_switch_interval(), gc_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(sys.getswitchinterval())
            seen.append(float(gc.isenabled()))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [pytest.approx(min(before, SWITCH_INTERVAL)), 0.0]
    assert sys.getswitchinterval() == before
    assert gc.isenabled()


def test_gc_paused_keeps_a_disabled_gc_disabled() -> None:
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_bulk_runs_with_gc_paused_and_restores_it_on_errors() -> None:
    @bulk
    def work(x: int) -> bool:
        if x < 0:
            raise ValueError("negative")
        return gc.isenabled()

    assert work(1) is False
    assert gc.isenabled()
    with pytest.raises(ValueError, match="negative"):
        work(-1)
    assert gc.isenabled()
