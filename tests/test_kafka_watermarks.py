"""Watermarks per split (Kafka partition), combined as the minimum over active splits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from fraudstream.common import Duration, WatermarkStrategy
from fraudstream.connectors.base import Source, SourceReader
from fraudstream.connectors.kafka import KafkaSource, create_topic
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.datastream.functions import ProcessFunction
from fraudstream.runtime.clock import ManualClock
from fraudstream.testing import CapturingSink
from kafka_broker import KafkaBroker

MIN = -(2**63)
Step = list[tuple[int, int]] | int  # a batch of (split, timestamp), or ms to advance the clock


class SplitScriptSource(Source[int]):
    """Plays batches of ``(split, timestamp)`` records; ints advance the manual clock."""

    def __init__(
        self,
        steps: list[Step],
        clock: ManualClock,
        assigned: list[int] | None = None,
        finished: list[int] | None = None,
    ) -> None:
        self.steps = steps
        self.clock = clock
        self.assigned = assigned
        self.finished = finished

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[int]:
        return SplitScriptReader(list(self.steps), self.clock, self.assigned, self.finished)


class SplitScriptReader(SourceReader[int]):
    def __init__(
        self,
        steps: list[Step],
        clock: ManualClock,
        assigned: list[int] | None,
        finished: list[int] | None,
    ) -> None:
        self.steps = steps
        self.clock = clock
        self.assigned = assigned
        self.finished = finished
        self.last: list[tuple[int, int]] = []
        self.position = 0

    def assigned_splits(self) -> Sequence[Any] | None:
        return self.assigned

    def finished_splits(self) -> Sequence[Any] | None:
        return self.finished

    def poll(self, max_records: int) -> Sequence[int] | None:
        if not self.steps:
            return None
        step = self.steps.pop(0)
        self.position += 1
        if isinstance(step, int):
            self.clock.advance(step)
            self.last = []
            return []
        self.last = step
        return [ts for _, ts in step]

    def timestamps(self) -> Sequence[int] | None:
        return [ts for _, ts in self.last]

    def splits(self) -> Sequence[Any] | None:
        return [split for split, _ in self.last]

    def snapshot_position(self) -> Any:
        return self.position

    def restore_position(self, position: Any) -> None:
        self.position = position


class WatermarkAtElement(ProcessFunction):
    """Emits ``(timestamp, watermark seen when the element arrived)``."""

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterator[Any]:
        yield (value, ctx.timer_service().current_watermark())


def run(
    steps: list[Step],
    strategy: WatermarkStrategy,
    assigned: list[int] | None = None,
    finished: list[int] | None = None,
) -> list[tuple[int, int]]:
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock)
    sink = CapturingSink()
    source = SplitScriptSource(steps, clock, assigned, finished)
    env.from_source(source, strategy, "splits").process(WatermarkAtElement()).sink_to(sink)
    env.execute("split watermarks")
    return list(sink.results)


def test_watermark_is_the_minimum_over_splits() -> None:
    seen = run(
        [[(0, 100), (1, 10)], [(0, 200)], [(1, 50)], [(0, 300)], [(1, 60)]],
        WatermarkStrategy.for_monotonous_timestamps(),
    )
    # each batch sees the watermark after the previous one: min over splits, minus 1 ms
    assert seen == [(100, -(2**63)), (10, -(2**63)), (200, 9), (50, 9), (300, 49), (60, 49)]


def test_an_idle_split_stops_holding_the_watermark_back_until_it_speaks_again() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_idleness(Duration.of_millis(1000))
    seen = run(
        [[(0, 100), (1, 10)], 600, [(0, 200)], 600, [], [(0, 300)], [(1, 20)], [(0, 400)]],
        strategy,
    )
    # split 1 is quiet from t=0; at t=1200 it is idle, so the watermark follows split 0;
    # it never goes back when split 1 speaks again
    assert seen == [(100, -(2**63)), (10, -(2**63)), (200, 9), (300, 199), (20, 299), (400, 299)]


def test_assigned_splits_hold_the_watermark_back_until_their_first_record() -> None:
    steps: list[Step] = [[(0, 100)], [(0, 200)], [(1, 10)], [(0, 300)], [(1, 50)], [(0, 400)]]
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    # Split 1 is known from the start: nothing of it is late when it comes after split 0.
    assert run(steps, strategy, assigned=[0, 1]) == [
        (100, -(2**63)),
        (200, -(2**63)),
        (10, -(2**63)),
        (300, 9),
        (50, 9),
        (400, 49),
    ]
    # Unannounced, split 1 counts from its first record, behind a watermark already at 199.
    assert run(steps, strategy)[2] == (10, 199)


def test_an_assigned_split_that_stays_silent_goes_idle() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_idleness(Duration.of_millis(1000))
    seen = run([[(0, 100)], 600, [(0, 200)], 600, [], [(0, 300)]], strategy, assigned=[0, 1])
    # split 1 never speaks: it holds the watermark back for the idle timeout, then not
    assert seen == [(100, -(2**63)), (200, -(2**63)), (300, 199)]


def test_a_finished_split_stops_holding_the_watermark_back() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    steps: list[Step] = [[(0, 100)], [(0, 200)], [(0, 300)]]
    # Split 1 is assigned but already read to its end (an empty partition of a bounded read).
    assert run(steps, strategy, assigned=[0, 1]) == [(100, MIN), (200, MIN), (300, MIN)]
    assert run(steps, strategy, assigned=[0, 1], finished=[1]) == [
        (100, MIN),
        (200, 99),
        (300, 199),
    ]


@pytest.mark.kafka
def test_kafka_partitions_have_their_own_watermarks(
    kafka_broker: KafkaBroker, kafka_topic: Any, kafka_producer: Any
) -> None:
    topic = kafka_topic("wm")
    create_topic(kafka_broker.bootstrap, topic, 2)
    producer = kafka_producer
    for i in range(3000):  # partition 0 far ahead in event time of partition 1
        producer.produce(topic, value=b"%d" % i, partition=0, timestamp=1_000_000 + i)
        producer.produce(topic, value=b"%d" % i, partition=1, timestamp=1_000 + i)
    assert producer.flush(30) == 0

    env = StreamExecutionEnvironment.get_execution_environment()
    source = KafkaSource(kafka_broker.bootstrap, topic, int, bounded=True, quiet_ms=200)
    sink = CapturingSink()
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    stream = env.from_source(source, strategy, "kafka")

    class Stamp(ProcessFunction):
        def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterator[Any]:
            yield (ctx.timestamp(), ctx.timer_service().current_watermark())

    stream.process(Stamp()).sink_to(sink)
    env.execute("kafka watermarks")
    assert len(sink.results) == 6000
    late = [(ts, wm) for ts, wm in sink.results if ts <= wm]
    assert late == []  # each partition is in order, so nothing is late per partition
    # Until partition 1's last record, partition 1 holds the watermark back (once read to
    # its end, it no longer does).
    last = max(i for i, (ts, _) in enumerate(sink.results) if ts < 1_000_000)
    assert max(wm for _, wm in sink.results[: last + 1]) <= 1_000 + 2999 - 1


def test_split_watermarks_survive_a_checkpoint() -> None:
    from fraudstream.runtime.operators.sources import SplitWatermarks

    strategy = WatermarkStrategy.for_monotonous_timestamps()
    before = SplitWatermarks(strategy)
    assert before.observe([0, 1, 0], [100, 10, 150], now=0) == 9
    after = SplitWatermarks(strategy)
    after.restore(before.snapshot(), now=5)
    # split 1 still holds the watermark back after the restore; it only moves forward
    assert after.observe([0], [400], now=6) is None
    assert after.observe([1], [5], now=7) is None
    assert after.observe([1], [300], now=8) == 299


@pytest.mark.kafka
def test_an_empty_kafka_partition_at_its_stop_offset_does_not_hold_the_watermark(
    kafka_broker: KafkaBroker, kafka_topic: Any, kafka_producer: Any
) -> None:
    topic = kafka_topic("wm-empty")
    create_topic(kafka_broker.bootstrap, topic, 2)
    for i in range(2000):  # partition 1 stays empty
        kafka_producer.produce(topic, value=b"%d" % i, partition=0, timestamp=1_000 + i)
    assert kafka_producer.flush(30) == 0

    env = StreamExecutionEnvironment.get_execution_environment()
    source = KafkaSource(kafka_broker.bootstrap, topic, int, stop_offsets={0: 2000, 1: 0})
    sink = CapturingSink()
    stream = env.from_source(source, WatermarkStrategy.for_monotonous_timestamps(), "kafka")
    stream.process(WatermarkAtElement()).sink_to(sink)
    env.execute("kafka watermarks, one empty partition")
    assert len(sink.results) == 2000
    # The watermark follows partition 0 while the job runs, not only at the end of input.
    assert max(wm for _, wm in sink.results) >= 1_000 + 1000
    assert all(1_000 + value > wm for value, wm in sink.results)  # none late


@pytest.mark.kafka
def test_a_bounded_read_releases_a_partition_once_it_was_at_its_end_for_the_quiet_time(
    kafka_broker: KafkaBroker, kafka_topic: Any, kafka_producer: Any
) -> None:
    import time

    from fraudstream.connectors.base import ReaderContext

    topic = kafka_topic("wm-quiet")
    create_topic(kafka_broker.bootstrap, topic, 2)
    for i in range(50):  # partition 1 stays empty for now
        kafka_producer.produce(topic, value=b"%d" % i, partition=0, timestamp=1_000 + i)
    assert kafka_producer.flush(30) == 0
    now = [0.0]
    source = KafkaSource(
        kafka_broker.bootstrap, topic, int, bounded=True, quiet_ms=500, monotonic=lambda: now[0]
    )
    reader: Any = source.create_reader(0, 1)  # a KafkaSource reader: _at_end is read below
    reader.open(ReaderContext())
    try:
        read: list[int] = []
        deadline = time.monotonic() + 20
        while (len(read) < 50 or 1 not in reader._at_end) and time.monotonic() < deadline:
            read.extend(reader.poll(100) or [])
        assert len(read) == 50 and 1 in reader._at_end
        # Just read up to its end: a producer may be about to write to it.
        assert 1 not in (reader.finished_splits() or [])
        now[0] += 0.5  # at its end for the quiet time: done holding the watermark back
        assert 1 in (reader.finished_splits() or [])
        kafka_producer.produce(topic, value=b"99", partition=1, timestamp=2_000)
        assert kafka_producer.flush(30) == 0
        deadline = time.monotonic() + 20
        while 99 not in read and time.monotonic() < deadline:
            read.extend(reader.poll(100) or [])
        assert 99 in read
        assert 1 not in (reader.finished_splits() or [])  # it speaks again
    finally:
        reader.close()
