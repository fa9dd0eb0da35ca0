"""Garbage-collector settings for a job that keeps many long-lived objects in state.

CPython's cyclic collector scans the youngest generation every 700 allocations and the
whole heap once the number of objects that survived grew by a quarter. A job with a
million keys in state pays for every one of those full scans (tens of milliseconds
each, seen as latency spikes) although state objects are hardly ever garbage.

:class:`LongLivedStateGC` is an explicit, scoped setting: while it is entered,

1. objects that exist when it is entered (modules, the job graph, input prepared by a
   benchmark) are frozen out of every collection (``gc.freeze``);
2. the collection thresholds are raised, so young collections run about a hundred
   times less often and full collections rarely: at most once per ~500 million
   allocations (minutes at full speed), and only once the objects that survived grew
   by a quarter, so cyclic garbage in the oldest generation is still reclaimed in a
   job that runs for days;

and on exit the previous thresholds come back and frozen objects are unfrozen. The
settings are process-global, so nested or concurrent scopes (jobs in threads) share
them: the first entry applies them, the last exit restores them. Most cyclic garbage still
goes in young collections.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from types import TracebackType

__all__ = ["CONFIG_KEY", "LongLivedStateGC", "frozen_heap"]

#: Configuration key (boolean): run the job under :class:`LongLivedStateGC`, e.g.
#: ``env.configure(Configuration().set_boolean(CONFIG_KEY, True))``.
CONFIG_KEY = "fraudstream.gc.long-lived-state"

#: (generation 0, 1, 2) thresholds while a scope is entered.
JOB_THRESHOLDS = (100_000, 50, 100)

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
_thaw = contextlib.ExitStack()


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Objects that exist on entry stay out of every collection until exit.

    When something is frozen already (an application's own ``gc.freeze``, or an outer
    scope), that freeze is left as it is: nothing is frozen here and nothing thawed.
    """
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()


class LongLivedStateGC:
    """Context manager: fewer garbage collections while a stateful job runs.

    Example::

        with LongLivedStateGC():
            env.execute("rules")
    """

    def __init__(self, thresholds: tuple[int, int, int] = JOB_THRESHOLDS) -> None:
        self.thresholds = thresholds

    def __enter__(self) -> LongLivedStateGC:
        global _depth, _saved
        with _lock:
            if _depth == 0:
                _saved = gc.get_threshold()
                _thaw.enter_context(frozen_heap())
                gc.set_threshold(*self.thresholds)
            _depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _depth, _saved
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _thaw.close()
                _saved = None

    @staticmethod
    def active() -> bool:
        """Whether some scope is entered in this process."""
        return _depth > 0
