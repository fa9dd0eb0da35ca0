"""The transaction generator: reproducible, splittable, checkpointable, paced, with fraud."""

from __future__ import annotations

import pickle
from collections import defaultdict

import pytest

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.base import ReaderContext, SourceReader
from fraudstream.connectors.generator import BLOCK, TransactionGenerator
from fraudstream.connectors.specs import make_source
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import build_tutorial_job
from fraudstream.runtime.clock import ManualClock
from fraudstream.testing import CapturingSink


def drain(reader: SourceReader[Transaction], batch: int = 1000) -> list[Transaction]:
    out: list[Transaction] = []
    while (records := reader.poll(batch)) is not None:
        out.extend(records)
    return out


def read_all(gen: TransactionGenerator, parallelism: int = 1) -> list[Transaction]:
    out: list[Transaction] = []
    for index in range(parallelism):
        reader = gen.create_reader(index, parallelism)
        reader.open(ReaderContext(index, parallelism))
        out.extend(drain(reader))
    return out


def tutorial_alerts(transactions: list[Transaction]) -> list[tuple[int, int, float]]:
    """The tutorial's detector as a plain loop: the oracle."""
    flagged: set[int] = set()
    alerts = []
    for tx in transactions:
        if tx.payee_id in flagged:
            if tx.payment_amount > 500.0:
                alerts.append((tx.payee_id, tx.event_time, tx.payment_amount))
            flagged.discard(tx.payee_id)
        if tx.payment_amount < 1.0:
            flagged.add(tx.payee_id)
    return alerts


def test_same_seed_same_transactions_other_seed_others() -> None:
    first = read_all(TransactionGenerator(seed=3, count=5000))
    assert first == read_all(TransactionGenerator(seed=3, count=5000))
    assert first != read_all(TransactionGenerator(seed=4, count=5000))
    assert len(first) == 5000
    assert len({tx.transaction_id for tx in first}) == 5000
    assert all(2**53 < tx.transaction_id < 2**63 for tx in first)
    assert [tx.event_time for tx in first] == [first[0].event_time + 10 * i for i in range(5000)]
    assert all(tx.ingestion_timestamp == tx.event_time for tx in first)
    assert {tx.payment_type for tx in first} == {"CSH", "CRD"}


@pytest.mark.parametrize("parallelism", [2, 3])
def test_parallel_readers_together_emit_the_same_transactions(parallelism: int) -> None:
    count = 5 * BLOCK + 17
    alone = read_all(TransactionGenerator(seed=9, count=count))
    split = read_all(TransactionGenerator(seed=9, count=count), parallelism)
    assert sorted(split) == sorted(alone)
    assert len(split) == count


def test_count_zero_ends_at_once_and_negative_is_refused() -> None:
    reader = TransactionGenerator(count=0).create_reader(0, 1)
    assert reader.poll(10) is None
    with pytest.raises(ConfigurationError, match="count must be >= 0"):
        TransactionGenerator(count=-1)


@pytest.mark.parametrize("cut", [0, 1, 700, BLOCK, BLOCK + 3, 3 * BLOCK - 1])
@pytest.mark.parametrize("parallelism", [1, 2])
def test_restore_continues_exactly(cut: int, parallelism: int) -> None:
    gen = TransactionGenerator(seed=5, count=4 * BLOCK + 100)
    for index in range(parallelism):
        whole = drain(gen.create_reader(index, parallelism), batch=333)
        reader = gen.create_reader(index, parallelism)
        head: list[Transaction] = []
        while len(head) < cut:
            records = reader.poll(min(97, cut - len(head)))
            if records is None:
                break
            head.extend(records)
        position = pickle.loads(pickle.dumps(reader.snapshot_position()))
        resumed = gen.create_reader(index, parallelism)
        resumed.restore_position(position)
        assert head + drain(resumed, batch=50) == whole


def test_restore_into_the_wrong_reader_is_refused() -> None:
    gen = TransactionGenerator(count=10 * BLOCK)
    reader = gen.create_reader(1, 2)
    with pytest.raises(ConfigurationError, match="does not belong to reader 1 of 2"):
        reader.restore_position(0)


def test_rate_is_paced_on_the_injected_clock_and_changes_live() -> None:
    clock = ManualClock(1_000_000)
    gen = TransactionGenerator(seed=1, rate=100)
    assert not gen.bounded
    reader = gen.create_reader(0, 1)
    reader.open(ReaderContext(clock_ms=clock.now_ms))
    assert reader.poll(1000) == []
    clock.advance(500)
    assert len(reader.poll(1000) or []) == 50
    assert reader.poll(1000) == []
    clock.advance(100)
    assert len(reader.poll(1000) or []) == 10
    gen.set_rate(1000)
    assert gen.rate == 1000
    assert reader.poll(1000) == []  # pacing restarts from now at the new rate
    clock.advance(200)
    assert len(reader.poll(1000) or []) == 200
    gen.pause()
    assert gen.paused
    clock.advance(1000)
    assert reader.poll(1000) == []
    gen.resume()
    assert reader.poll(1000) == []
    clock.advance(10)
    assert len(reader.poll(1000) or []) == 10
    gen.set_rate(None)
    unthrottled = len(reader.poll(1000) or [])  # up to the end of the current block
    assert unthrottled > 0
    assert gen.emitted == 50 + 10 + 200 + 10 + unthrottled
    with pytest.raises(ConfigurationError, match="rate must be >= 0"):
        gen.set_rate(-1)


def test_rate_is_split_over_readers_and_a_slow_job_is_not_flooded() -> None:
    clock = ManualClock(0)
    gen = TransactionGenerator(rate=1000)
    readers = [gen.create_reader(i, 2) for i in range(2)]
    for index, reader in enumerate(readers):
        reader.open(ReaderContext(index, 2, clock_ms=clock.now_ms))
        assert reader.poll(10_000) == []
    clock.advance(1000)
    assert [len(r.poll(10_000) or []) for r in readers] == [500, 500]
    clock.advance(60_000)  # a stalled job does not get a minute's backlog at once
    assert [len(r.poll(10_000) or []) for r in readers] == [0, 0]


def test_clock_time_mode_stamps_the_wall_clock() -> None:
    clock = ManualClock(1_750_000_000_000)
    gen = TransactionGenerator(seed=2, count=10, time="clock")
    reader = gen.create_reader(0, 1)
    reader.open(ReaderContext(clock_ms=clock.now_ms))
    records = reader.poll(10) or []
    assert {(tx.event_time, tx.ingestion_timestamp) for tx in records} == {
        (1_750_000_000_000, 1_750_000_000_000)
    }
    assert reader.timestamps() == [1_750_000_000_000] * 10
    plain = read_all(TransactionGenerator(seed=2, count=10))
    assert [tx[2:6] for tx in records] == [tx[2:6] for tx in plain]


def test_tutorial_pattern_is_injected_at_its_rate() -> None:
    gen = TransactionGenerator(seed=11, count=200_000, tutorial_rate=0.002, fraud_rate=0.0)
    records = read_all(gen)
    smalls = [tx for tx in records if tx.payment_amount < 1.0]
    larges = [tx for tx in records if tx.payment_amount > 500.0]
    assert 300 < len(smalls) < 500  # 0.002 per slot, two slots per pair
    assert len(smalls) == len(larges)
    alerts = tutorial_alerts(records)
    assert len(alerts) == len(smalls)
    assert sorted(alerts) == sorted(
        (tx.payee_id, tx.event_time, tx.payment_amount) for tx in larges
    )
    injected = set(smalls + larges)
    assert all(1.0 <= tx.payment_amount <= 500.0 for tx in records if tx not in injected)
    none = read_all(TransactionGenerator(seed=11, count=50_000, tutorial_rate=0.0, fraud_rate=0.0))
    assert tutorial_alerts(none) == []


def test_demo_fraud_bursts_trip_the_demo_rules() -> None:
    gen = TransactionGenerator(seed=4, count=100_000, fraud_rate=0.001)
    records = read_all(gen)
    burst = [
        tx
        for tx in records
        if (tx.payee_id, tx.beneficiary_id) == (gen.fraud_payee, gen.fraud_beneficiary)
    ]
    assert len(burst) >= 8 * 50
    day_ms, month_ms = 24 * 3600 * 1000, 30 * 24 * 3600 * 1000
    # Rule 1: SUM(paymentAmount) > 20,000,000 over 30 days per (payee, beneficiary).
    first = burst[0].event_time
    assert sum(tx.payment_amount for tx in burst if tx.event_time - first <= month_ms) > 20e6
    # Rule 3: SUM(paymentAmount) >= 10,000,000 over a day per beneficiary.
    by_beneficiary: dict[int, float] = defaultdict(float)
    for tx in records:
        if tx.event_time - first <= day_ms:
            by_beneficiary[tx.beneficiary_id] += tx.payment_amount
    assert max(by_beneficiary, key=by_beneficiary.__getitem__) == gen.fraud_beneficiary
    assert by_beneficiary[gen.fraud_beneficiary] >= 10e6
    # Ordinary traffic alone never gets near either limit.
    in_burst = set(burst)
    others = [tx for tx in records if tx not in in_burst]
    assert max(tx.payment_amount for tx in others) < 2000


def test_the_tutorial_job_over_the_generator_finds_the_injected_pairs() -> None:
    gen = TransactionGenerator(seed=8, count=30_000, tutorial_rate=0.005)
    expected = tutorial_alerts(read_all(gen))
    assert len(expected) > 50
    env = StreamExecutionEnvironment.get_execution_environment()
    sink = CapturingSink()
    stream = env.from_source(gen, WatermarkStrategy.no_watermarks(), "generator")
    build_tutorial_job(stream.map(lambda t: (t.payee_id, t.event_time, t.payment_amount))).sink_to(
        sink
    )
    env.execute("generator-tutorial")
    got = sorted((a.account_id, a.timestamp, a.amount) for a in sink.results)
    assert got == sorted(expected)


def test_spec_options() -> None:
    gen = make_source(
        "generator:count=1_000,seed=7,rate=250.5,accounts=50,tutorial-rate=0.1,fraud-rate=0,"
        "burst-size=3,burst-amount=10,spacing-ms=1,base-time-ms=1700000000000",
        "transactions",
    )
    assert isinstance(gen, TransactionGenerator)
    assert (gen.count, gen.seed, gen.rate, gen.accounts) == (1000, 7, 250.5, 50)
    assert (gen.tutorial_rate, gen.fraud_rate, gen.burst_size, gen.burst_amount) == (0.1, 0, 3, 10)
    assert (gen.spacing_ms, gen.base_time_ms, gen.time) == (1, 1_700_000_000_000, "sequence")
    unbounded = make_source("generator", "transactions")
    assert unbounded.count is None and unbounded.rate is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("generator:count=-5", "count must be >= 0"),
        ("generator:count=many", "count='many' is not an integer"),
        ("generator:rate=-1", "rate must be a finite number >= 0"),
        ("generator:rate=fast", "rate='fast' is not a number"),
        ("generator:rate=inf", "rate must be a finite number >= 0"),
        ("generator:colour=red", "unknown generator option(s) colour"),
        ("generator:accounts=1", "accounts must be >= 2"),
        ("generator:fraud-rate=2", "fraud_rate must be in [0, 1]"),
        ("generator:time=tomorrow", "time must be 'sequence' or 'clock'"),
        ("generator:file.txt", "takes options only"),
    ],
)
def test_bad_spec_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_source(text, "transactions")
    assert message in str(info.value)


def test_the_generator_only_makes_transactions() -> None:
    with pytest.raises(ConfigurationError, match="makes transactions, not rules"):
        make_source("generator", "rules")


def test_pickled_generator_emits_the_same_and_keeps_live_control_local() -> None:
    gen = TransactionGenerator(seed=6, count=3000, rate=50)
    gen.pause()
    copy = pickle.loads(pickle.dumps(gen))
    assert copy.rate == 50 and not copy.paused
    copy.set_rate(None)
    gen.set_rate(None)
    gen.resume()
    assert read_all(copy) == read_all(gen)


def test_rates_below_one_per_second_still_emit() -> None:
    clock = ManualClock(0)
    gen = TransactionGenerator(rate=0.5)
    reader = gen.create_reader(0, 1)
    reader.open(ReaderContext(clock_ms=clock.now_ms))
    assert reader.poll(100) == []  # pacing starts at the first poll
    emitted = []
    for _ in range(10):
        clock.advance(1000)
        emitted.append(len(reader.poll(100) or []))
    assert sum(emitted) == 5
    assert max(emitted) == 1
