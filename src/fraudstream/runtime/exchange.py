"""Channels between parallel instances: hash (key groups), broadcast and round-robin.

An :class:`ExchangeOutput` stands where a :class:`Channel` would in an upstream
operator's output and splits each batch over the downstream instances. Watermarks,
idleness and end of input go to every downstream instance, so each instance takes
the minimum watermark over all upstream instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fraudstream.runtime.keygroups import assign_to_key_group, operator_index_for_key_group
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
        if partitioning == "hash":
            self.push = self._push_hash
        elif partitioning == "broadcast":
            self.push = self._push_all
        elif partitioning == "global":
            self.push = self.targets[0].push
        else:
            self.push = self._push_round_robin

    def _target_of(self, key: Any) -> int:
        index = self._route.get(key)
        if index is None:
            group = assign_to_key_group(key, self.max_parallelism)
            index = operator_index_for_key_group(group, self.max_parallelism, len(self.targets))
            if len(self._route) >= self._CACHE_LIMIT:
                self._route.clear()
            self._route[key] = index
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
            hash(key)
        except Exception:
            return 0
        return self._target_of(key)  # a key the key-group hash cannot take fails here

    def _push_hash(self, values: list[Any], timestamps: Timestamps) -> None:
        targets = self.targets
        count = len(targets)
        key_of = self.key_selector
        assert key_of is not None
        route = self._route
        instance_of = self._instance_of
        buckets: list[list[Any]] = [[] for _ in range(count)]
        appends = [bucket.append for bucket in buckets]
        if timestamps is None:
            records = iter(values)
            while True:
                try:
                    # The hot loop: a key's instance is cached, so a record costs the key
                    # selector, one dict lookup and one append.
                    for value in records:
                        appends[route[key_of(value)]](value)
                    break
                except Exception:
                    # A key with no cached instance yet (KeyError), or a failing key
                    # selector: route this record alone, then carry on with the same
                    # iterator.
                    appends[instance_of(value)](value)
            for index in range(count):
                if buckets[index]:
                    targets[index].push(buckets[index], None)
            return
        stamps: list[list[Any]] = [[] for _ in range(count)]
        stamp_appends = [stamp.append for stamp in stamps]
        stamped = zip(values, timestamps)
        while True:
            try:
                for value, ts in stamped:
                    index = route[key_of(value)]
                    appends[index](value)
                    stamp_appends[index](ts)
                break
            except Exception:
                index = instance_of(value)
                appends[index](value)
                stamp_appends[index](ts)
        for index in range(count):
            if buckets[index]:
                targets[index].push(buckets[index], stamps[index])

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
