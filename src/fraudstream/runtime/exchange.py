"""Channels between parallel instances: hash (key groups), broadcast and round-robin.

An :class:`ExchangeOutput` stands where a :class:`Channel` would in an upstream
operator's output and splits each batch over the downstream instances. Watermarks,
idleness and end of input go to every downstream instance, so each instance takes
the minimum watermark over all upstream instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fraudstream.runtime.keygroups import stable_hash
from fraudstream.runtime.operators.base import Timestamps

__all__ = ["ExchangeOutput", "Target"]


class Target:
    """Where one downstream instance receives: anything with a Channel's methods."""

    push: Callable[[list[Any], Timestamps], None]

    def watermark(self, watermark: int) -> None:
        """Forward a watermark."""
        raise NotImplementedError

    def idle(self, idle: bool) -> None:
        """Forward idleness."""
        raise NotImplementedError

    def end(self) -> None:
        """Forward end of input."""
        raise NotImplementedError


class ExchangeOutput:
    """Splits batches over downstream instances by the edge's partitioning."""

    _CACHE_LIMIT = 1 << 18

    def __init__(
        self,
        targets: Sequence[Any],
        partitioning: str,
        key_selector: Callable[[Any], Any] | None,
        max_parallelism: int,
        subtask_index: int,
    ) -> None:
        self.targets = list(targets)
        self.partitioning = partitioning
        self.key_selector = key_selector
        self.max_parallelism = max_parallelism
        self._next = subtask_index  # round-robin starts at a different instance per sender
        self._route: dict[Any, int] = {}
        self._new_keys_often = False
        if partitioning == "hash":
            self.push = self._push_hash
        elif partitioning == "broadcast":
            self.push = self._push_all
        elif partitioning == "global":
            self.push = self.targets[0].push
        else:
            self.push = self._push_round_robin

    def _target_of(self, key: Any) -> int:
        """The instance of ``key`` (not cached yet), cached from now on."""
        route = self._route
        max_parallelism = self.max_parallelism
        index = stable_hash(key) % max_parallelism * len(self.targets) // max_parallelism
        if len(route) >= self._CACHE_LIMIT:
            route.clear()
        route[key] = index
        return index

    def _instance_of(self, value: Any) -> int:
        """The instance ``value`` goes to, when its key has no cached instance.

        A record whose key selector fails, or whose key cannot be hashed (a list), goes
        to the first instance: the keyed operator there fails on it the same way, so it
        names the record, or sends it to its error output, as a single instance would.
        """
        assert self.key_selector is not None
        try:
            key = self.key_selector(value)
            index = self._route.get(key)
        except Exception:
            return 0
        if index is not None:
            return index
        return self._target_of(key)  # a key the key-group hash cannot take fails here

    def _push_hash(self, values: list[Any], timestamps: Timestamps) -> None:
        """Split a batch by key: one loop for keys seen before, one for new keys.

        Most keys of most jobs repeat, and a cached key costs the key selector, one dict
        subscript and an append; a key not cached yet then costs an exception. Keys that
        are new on almost every record (the rules job's pairs of accounts) take a loop
        that looks them up with ``get`` instead, chosen when the previous batch of this
        exchange had more than one new key in 16.
        """
        count = len(self.targets)
        buckets: list[list[Any]] = [[] for _ in range(count)]
        stamps: list[list[Any]] | None = None
        if timestamps is None:
            if self._new_keys_often:
                misses = self._route_new_keys(values, buckets)
            else:
                misses = self._route_seen_keys(values, buckets)
        else:
            stamps = [[] for _ in range(count)]
            pairs = zip(values, timestamps)
            if self._new_keys_often:
                misses = self._route_new_keys_stamped(pairs, buckets, stamps)
            else:
                misses = self._route_seen_keys_stamped(pairs, buckets, stamps)
        self._new_keys_often = misses * 16 > len(values)
        targets = self.targets
        for index in range(count):
            if buckets[index]:
                targets[index].push(buckets[index], stamps[index] if stamps else None)

    def _route_seen_keys(self, values: list[Any], buckets: list[list[Any]]) -> int:
        key_of = self.key_selector
        assert key_of is not None
        route = self._route
        instance_of = self._instance_of
        appends = [bucket.append for bucket in buckets]
        records = iter(values)
        misses = 0
        while True:
            try:
                # The hot loop: a record costs the key selector, a subscript, an append.
                for value in records:
                    appends[route[key_of(value)]](value)
                return misses
            except Exception:
                # A key with no cached instance yet (KeyError), or a failing key
                # selector: route this record alone, then go on with the same iterator.
                misses += 1
                appends[instance_of(value)](value)

    def _route_new_keys(self, values: list[Any], buckets: list[list[Any]]) -> int:
        key_of = self.key_selector
        assert key_of is not None
        lookup = self._route.get
        target_of = self._target_of
        instance_of = self._instance_of
        appends = [bucket.append for bucket in buckets]
        records = iter(values)
        misses = 0
        while True:
            try:
                for value in records:
                    key = key_of(value)
                    index = lookup(key)
                    if index is None:
                        misses += 1
                        index = target_of(key)
                    appends[index](value)
                return misses
            except Exception:  # a failing key selector, or a key Python cannot hash
                appends[instance_of(value)](value)

    def _route_seen_keys_stamped(
        self, pairs: Any, buckets: list[list[Any]], stamps: list[list[Any]]
    ) -> int:
        key_of = self.key_selector
        assert key_of is not None
        route = self._route
        instance_of = self._instance_of
        appends = [bucket.append for bucket in buckets]
        stamp_appends = [stamp.append for stamp in stamps]
        misses = 0
        while True:
            try:
                for value, ts in pairs:
                    index = route[key_of(value)]
                    appends[index](value)
                    stamp_appends[index](ts)
                return misses
            except Exception:
                misses += 1
                index = instance_of(value)
                appends[index](value)
                stamp_appends[index](ts)

    def _route_new_keys_stamped(
        self, pairs: Any, buckets: list[list[Any]], stamps: list[list[Any]]
    ) -> int:
        key_of = self.key_selector
        assert key_of is not None
        lookup = self._route.get
        target_of = self._target_of
        instance_of = self._instance_of
        appends = [bucket.append for bucket in buckets]
        stamp_appends = [stamp.append for stamp in stamps]
        misses = 0
        while True:
            try:
                for value, ts in pairs:
                    key = key_of(value)
                    index = lookup(key)
                    if index is None:
                        misses += 1
                        index = target_of(key)
                    appends[index](value)
                    stamp_appends[index](ts)
                return misses
            except Exception:
                index = instance_of(value)
                appends[index](value)
                stamp_appends[index](ts)

    def _push_all(self, values: list[Any], timestamps: Timestamps) -> None:
        for target in self.targets:
            target.push(values, timestamps)

    def _push_round_robin(self, values: list[Any], timestamps: Timestamps) -> None:
        # Whole batches go round-robin: cheaper than per record, and still balanced.
        target = self.targets[self._next % len(self.targets)]
        self._next += 1
        target.push(values, timestamps)

    def watermark(self, watermark: int) -> None:
        """Every downstream instance gets every watermark."""
        for target in self.targets:
            target.watermark(watermark)

    def idle(self, idle: bool) -> None:
        """Every downstream instance learns of idleness."""
        for target in self.targets:
            target.idle(idle)

    def end(self) -> None:
        """Every downstream instance learns this sender ended."""
        for target in self.targets:
            target.end()

    def barrier(self, checkpoint_id: int) -> None:
        """Every downstream instance gets every checkpoint barrier."""
        for target in self.targets:
            target.barrier(checkpoint_id)
