"""The collector and a long-lived process's start-up objects.

A service process builds a few hundred thousand objects as it starts (modules, routes and their
schemas, pydantic validators, the event and area catalogues) and keeps them until it stops.
CPython's full (oldest-generation) collection walks every one of them each time: about 130 ms
for the API process, measured with a ``gc.callbacks`` timer, during which no request is answered
(a p99 of 114 ms against a median of 21 ms on the list routes, ``bench.queries``). Moving them
into the permanent generation once the process is ready leaves the collector only what requests
allocate (a full collection then takes about 1 ms).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_startup_heap() -> int:
    """Collect once, then take every surviving object out of later collections; returns how
    many were frozen. Call it once, when a long-lived process is ready to work: anything frozen
    that later becomes cyclic garbage is never reclaimed (objects freed by their reference count,
    nearly all of them, still are)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


# -- bulk work ---------------------------------------------------------------------------------
BULK_YOUNG_THRESHOLD = 10_000  # allocations between young collections while bulk work runs (CPython: 700)
_bulk_lock = threading.Lock()
_bulk_depth = 0
_saved_threshold: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often while a bulk import or a rebuild runs. Such work keeps large
    structures alive (the batch's aggregates, the identity-number claims seen so far, the rows
    read ahead), and with CPython's default thresholds the collector walked them 49 times in
    full while 260,000 residents and their moves were imported: 15 s of a 69 s import (timed
    with ``gc.callbacks``). Young collections every 10,000 allocations instead of 700 make the
    full passes rarer too (5): the import took 56 s. The thresholds are the process's own, so
    overlapping bulk work (two uploads in one API process) shares one change, undone when the
    last of them ends."""
    global _bulk_depth, _saved_threshold
    with _bulk_lock:
        if _bulk_depth == 0:
            _saved_threshold = gc.get_threshold()
            gc.set_threshold(max(BULK_YOUNG_THRESHOLD, _saved_threshold[0]), *_saved_threshold[1:])
        _bulk_depth += 1
    try:
        yield
    finally:
        with _bulk_lock:
            _bulk_depth -= 1
            if _bulk_depth == 0 and _saved_threshold is not None:
                gc.set_threshold(*_saved_threshold)
