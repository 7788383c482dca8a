"""The collector settings of long-lived processes and bulk work (application/heap.py)."""

from __future__ import annotations

import gc
import threading

import pytest

from application.heap import BULK_YOUNG_THRESHOLD, fewer_collections, freeze_startup_heap


def test_bulk_work_collects_less_often_and_puts_the_thresholds_back_even_after_an_error() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (max(BULK_YOUNG_THRESHOLD, before[0]), *before[1:])
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a refused import")
    assert gc.get_threshold() == before


def test_overlapping_bulk_work_keeps_the_change_until_the_last_one_ends() -> None:
    before = gc.get_threshold()
    first_inside, first_may_end = threading.Event(), threading.Event()
    seen_after_second: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_collections():
            first_inside.set()
            first_may_end.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(10)
    with fewer_collections():
        pass
    seen_after_second.append(gc.get_threshold())  # the first import still runs
    first_may_end.set()
    thread.join(10)
    assert seen_after_second == [(max(BULK_YOUNG_THRESHOLD, before[0]), *before[1:])]
    assert gc.get_threshold() == before


def test_a_decorated_import_runs_with_fewer_collections() -> None:
    @fewer_collections()
    def bulk() -> tuple[int, int, int]:
        return gc.get_threshold()

    before = gc.get_threshold()
    assert bulk()[0] == max(BULK_YOUNG_THRESHOLD, before[0])
    assert gc.get_threshold() == before


def test_the_start_up_heap_leaves_the_collectors_walks() -> None:
    try:
        frozen = freeze_startup_heap()
        # The modules, classes and functions loaded so far (other threads of the test process may
        # allocate between the two calls, so the counts are not compared exactly).
        assert frozen > 1000
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()  # the test process is not a service: give its objects back to the collector
    assert gc.get_freeze_count() == 0
