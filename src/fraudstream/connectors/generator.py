"""The transaction generator: the demo's traffic, reproducible for a seed, with fraud injected.

How the sequence is made, so that it is reproducible and checkpointable:

1. Transaction number ``n`` (0, 1, 2, ...) belongs to block ``n // BLOCK`` of
   :data:`BLOCK` transactions. A block is generated from its own ``random.Random``
   seeded by the seed and the block number, so any block can be rebuilt on its own.
2. With ``p`` parallel readers, reader ``i`` reads blocks ``i, i + p, i + 2p, ...``.
   Together the readers emit the same transactions for any ``p``.
3. A reader's position is the number of the next transaction it emits. Restoring
   rebuilds that block and continues inside it, exactly.
4. ``count=N`` bounds the stream to transactions ``0 .. N-1``.

Inside a block, each slot is an ordinary payment, the start of a *small-then-large* pair
(the tutorial's pattern: a payment under 1.00 then one over 500.00 by the same payee,
both in the same block so one reader emits them in order), or the start of a *burst*
of large payments between the fixed fraud payee and beneficiary (the demo's pattern,
which trips the demo rules 1 and 3). Ordinary amounts lie between 1.00 and 500.00, so
every tutorial alert comes from an injected pair.

Time: with ``time="sequence"`` (the default) transaction ``n`` happens at
``base_time_ms + n * spacing_ms`` and its ingestion timestamp equals its event time, so a
bounded run is identical whatever the wall clock says. With ``time="clock"`` (the live
demo) both are the reader's processing-time clock when the transaction is emitted.

Rate: ``rate`` transactions per second in total (split over readers), measured on the
reader's injected clock; ``None`` emits as fast as the job reads. :meth:`set_rate`,
:meth:`pause` and :meth:`resume` act on running readers of the same process.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from fraudstream.connectors.base import ReaderContext, Source, SourceReader
from fraudstream.exceptions import ConfigurationError
from fraudstream.fraud.transaction import Transaction

__all__ = ["BLOCK", "DEFAULT_BASE_TIME_MS", "TransactionGenerator", "generator_source"]

#: Transactions per independently generated block.
BLOCK = 1024
#: 2024-01-01T00:00:00Z: where ``time="sequence"`` event times start.
DEFAULT_BASE_TIME_MS = 1_704_067_200_000
#: A reader that fell behind its rate catches up by at most this long a burst.
_MAX_CATCH_UP_S = 1.0


class TransactionGenerator(Source[Transaction]):
    """Generated transactions with the demo's fields (a ``Source[Transaction]``).

    Args:
        seed: the same seed gives the same transactions.
        rate: target transactions per second over all readers; ``None`` = unthrottled.
        count: number of transactions, or ``None`` for an unbounded stream.
        accounts: payees and beneficiaries are ids ``0 .. accounts-1``.
        fraud_rate: chance per transaction that a burst of large payments between
            :attr:`fraud_payee` and :attr:`fraud_beneficiary` starts there.
        burst_size: payments per burst.
        burst_amount: each burst payment is between 0.8 and 1.2 times this.
        tutorial_rate: chance per transaction that a small-then-large pair starts there.
        time: ``"sequence"`` (reproducible event times) or ``"clock"`` (wall clock).
        base_time_ms: event time of transaction 0 with ``time="sequence"``.
        spacing_ms: event-time distance between consecutive transactions.
    """

    def __init__(
        self,
        seed: int = 0,
        rate: float | None = None,
        count: int | None = None,
        *,
        accounts: int = 10_000,
        fraud_rate: float = 0.0005,
        burst_size: int = 8,
        burst_amount: float = 3_000_000.0,
        tutorial_rate: float = 0.001,
        time: str = "sequence",
        base_time_ms: int = DEFAULT_BASE_TIME_MS,
        spacing_ms: int = 10,
    ) -> None:
        if count is not None and count < 0:
            raise ConfigurationError(f"generator count must be >= 0, got {count!r}")
        if accounts < 2:
            raise ConfigurationError(f"generator accounts must be >= 2, got {accounts!r}")
        for name, chance in (("fraud_rate", fraud_rate), ("tutorial_rate", tutorial_rate)):
            if not 0.0 <= chance <= 1.0:
                raise ConfigurationError(f"generator {name} must be in [0, 1], got {chance!r}")
        if fraud_rate + tutorial_rate > 1.0:
            raise ConfigurationError("generator fraud_rate + tutorial_rate must be <= 1")
        if not 1 <= burst_size <= BLOCK // 2:
            raise ConfigurationError(f"generator burst_size must be 1..{BLOCK // 2}")
        if not 0 < burst_amount <= 1e12:
            raise ConfigurationError(
                f"generator burst_amount must be in (0, 1e12], got {burst_amount!r}"
            )
        if time not in ("sequence", "clock"):
            raise ConfigurationError(f"generator time must be 'sequence' or 'clock', got {time!r}")
        if spacing_ms < 0:
            raise ConfigurationError(f"generator spacing_ms must be >= 0, got {spacing_ms!r}")
        self.seed = int(seed)
        self.count = count
        self.accounts = int(accounts)
        self.fraud_rate = float(fraud_rate)
        self.burst_size = int(burst_size)
        self.burst_amount = float(burst_amount)
        self.tutorial_rate = float(tutorial_rate)
        self.time = time
        self.base_time_ms = int(base_time_ms)
        self.spacing_ms = int(spacing_ms)
        self.bounded = count is not None
        picker = random.Random(f"fraudstream-generator-{self.seed}")
        #: The fixed pair of the demo's fraud pattern.
        self.fraud_payee = picker.randrange(self.accounts)
        self.fraud_beneficiary = (
            self.fraud_payee + 1 + picker.randrange(self.accounts - 1)
        ) % self.accounts
        #: Transaction ids are ``id_base + n``: unique, < 2**63, beyond 2**53 (exact ids matter).
        self.id_base = (1 << 60) + picker.randrange(1 << 61)
        self._control = _Control(rate)

    # -- live control (any thread) --------------------------------------------------------------
    @property
    def rate(self) -> float | None:
        """Target transactions per second over all readers (``None``: unthrottled)."""
        return self._control.rate

    def set_rate(self, rate: float | None) -> None:
        """Change the rate of running readers (``None``: unthrottled); thread-safe."""
        if rate is not None and not rate >= 0:
            raise ConfigurationError(f"generator rate must be >= 0 or None, got {rate!r}")
        self._control.set_rate(rate)

    def pause(self) -> None:
        """Stop emitting until :meth:`resume` (readers return empty batches)."""
        self._control.paused = True

    def resume(self) -> None:
        """Emit again after :meth:`pause`."""
        self._control.paused = False
        self._control.bump()

    @property
    def paused(self) -> bool:
        """Whether the generator is paused."""
        return self._control.paused

    @property
    def emitted(self) -> int:
        """Transactions emitted by the readers of this process so far."""
        return self._control.emitted

    # -- reading -------------------------------------------------------------------------------
    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Transaction]:
        """Reader ``subtask_index`` of ``parallelism``: every ``parallelism``-th block."""
        return _GeneratorReader(self, subtask_index, parallelism)

    def block(self, number: int) -> list[Transaction]:
        """Transactions ``number * BLOCK`` to ``(number + 1) * BLOCK - 1``, with sequence times.

        Pure: the same seed and number give the same block.
        """
        rng = random.Random((self.seed << 32) ^ number)
        rand = rng.random
        accounts = float(self.accounts)
        fraud_limit = self.fraud_rate
        tutorial_limit = fraud_limit + self.tutorial_rate
        burst_size = self.burst_size
        burst_low = self.burst_amount * 0.8
        burst_span = self.burst_amount * 0.4
        first = number * BLOCK
        spacing = self.spacing_ms
        tid = self.id_base + first
        when = self.base_time_ms + first * spacing
        new = tuple.__new__
        slots: list[Transaction] = []
        append = slots.append
        filled = 0
        while filled < BLOCK:
            draw = rand()
            room = BLOCK - filled
            if draw < fraud_limit and room >= burst_size:
                payee, beneficiary = self.fraud_payee, self.fraud_beneficiary
                for _ in range(burst_size):
                    amount = int(burst_low + rand() * burst_span) / 1.0
                    append(new(Transaction, (tid, when, payee, beneficiary, amount, "CSH", when)))
                    tid += 1
                    when += spacing
                filled += burst_size
            elif fraud_limit <= draw < tutorial_limit and room >= 2:
                payee = int(rand() * accounts)
                small = (1 + int(rand() * 98)) / 100
                large = (50_001 + int(rand() * 100_000)) / 100
                beneficiary = int(rand() * accounts)
                append(new(Transaction, (tid, when, payee, beneficiary, small, "CRD", when)))
                beneficiary = int(rand() * accounts)
                tid += 1
                when += spacing
                append(new(Transaction, (tid, when, payee, beneficiary, large, "CRD", when)))
                tid += 1
                when += spacing
                filled += 2
            else:
                amount = (100 + int(rand() * 49_900)) / 100
                kind = "CSH" if int(draw * 2.0e9) & 1 else "CRD"
                payee = int(rand() * accounts)
                beneficiary = int(rand() * accounts)
                append(new(Transaction, (tid, when, payee, beneficiary, amount, kind, when)))
                tid += 1
                when += spacing
                filled += 1
        return slots


class _Control:
    """Rate and pause shared between the controlling thread and the readers."""

    def __init__(self, rate: float | None) -> None:
        self._lock = threading.Lock()
        self.rate = rate
        self.paused = False
        self.emitted = 0
        #: Incremented when the rate or pause changes; readers then restart their pacing.
        self.version = 0

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy in another process starts unpaused at the same rate; live control stays here.
        return (_Control, (self.rate,))

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            self.rate = None if rate is None else float(rate)
            self.version += 1

    def bump(self) -> None:
        with self._lock:
            self.version += 1


class _GeneratorReader(SourceReader[Transaction]):
    def __init__(self, source: TransactionGenerator, subtask_index: int, parallelism: int) -> None:
        self._source = source
        self._index = subtask_index
        self._parallelism = parallelism
        self._next = subtask_index * BLOCK  # the next transaction number to emit
        self._block_number = -1
        self._block: list[Transaction] = []
        self._clock: Any = lambda: 0
        self._timestamps: list[int] = []
        self._pace_version = -1
        self._pace_start_ms = 0
        self._pace_emitted = 0

    def open(self, context: ReaderContext) -> None:
        self._clock = context.clock_ms

    def _allowed(self, wanted: int) -> int:
        """How many records the rate allows now (pacing restarts when the rate changes)."""
        control = self._source._control
        if control.paused:
            return 0
        rate = control.rate
        if rate is None:
            return wanted
        now = self._clock()
        if control.version != self._pace_version:
            self._pace_version = control.version
            self._pace_start_ms = now
            self._pace_emitted = 0
        per_reader = rate / self._parallelism
        due = int(per_reader * (now - self._pace_start_ms) / 1000.0) - self._pace_emitted
        if due > max(per_reader * _MAX_CATCH_UP_S, 1):  # fell far behind: do not flood
            self._pace_start_ms = now
            self._pace_emitted = 0
            due = 0
        return max(0, min(wanted, due))

    def poll(self, max_records: int) -> list[Transaction] | None:
        source = self._source
        count = source.count
        n = self._next
        if count is not None and n >= count:
            return None
        allowed = self._allowed(max_records)
        if allowed <= 0:
            self._timestamps = []
            return []
        block_number, offset = divmod(n, BLOCK)
        if block_number != self._block_number:
            self._block = source.block(block_number)
            self._block_number = block_number
        take = min(allowed, BLOCK - offset)
        if count is not None:
            take = min(take, count - n)
        batch = self._block[offset : offset + take]
        if source.time == "sequence":
            self._timestamps = [t[1] for t in batch]
        else:
            now = self._clock()
            new = tuple.__new__
            batch = [new(Transaction, (t[0], now, *t[2:6], now)) for t in batch]
            self._timestamps = [now] * take
        n += take
        if n % BLOCK == 0:  # block done: jump to this reader's next block
            n += (self._parallelism - 1) * BLOCK
        self._next = n
        self._pace_emitted += take
        source._control.emitted += take
        return batch

    def timestamps(self) -> list[int]:
        return self._timestamps

    def snapshot_position(self) -> int:
        return self._next

    def restore_position(self, position: Any) -> None:
        n = int(position)
        if n < 0 or (n // BLOCK) % self._parallelism != self._index:
            raise ConfigurationError(
                f"generator position {n} does not belong to reader {self._index} of "
                f"{self._parallelism}; restore with the parallelism of the checkpoint"
            )
        self._next = n


_FLOAT_OPTIONS = {"fraud-rate": "fraud_rate", "tutorial-rate": "tutorial_rate"}


def generator_source(spec: Any, role: str) -> TransactionGenerator:
    """``generator:rate=R,count=N,seed=S,...``, the CLI's generator (role ``transactions``).

    Options: ``rate`` (tx/s, omitted = unthrottled), ``count`` (omitted = unbounded),
    ``seed``, ``accounts``, ``fraud-rate``, ``tutorial-rate``, ``burst-size``,
    ``burst-amount``, ``time`` (``sequence`` | ``clock``), ``spacing-ms``, ``base-time-ms``.
    """
    if role != "transactions":
        raise ConfigurationError(f"{spec.text!r}: the generator makes transactions, not {role}")
    known = {
        "rate", "count", "seed", "accounts", "fraud-rate", "tutorial-rate", "burst-size",
        "burst-amount", "time", "spacing-ms", "base-time-ms",
    }  # fmt: skip
    unknown = sorted(set(spec.options) - known)
    if unknown:
        raise ConfigurationError(
            f"{spec.text!r}: unknown generator option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    if spec.target:
        raise ConfigurationError(f"{spec.text!r}: the generator takes options only (key=value)")

    def number(name: str) -> float | None:
        raw = spec.option(name)
        if raw is None:
            return None
        try:
            value = float(raw.replace("_", ""))
        except ValueError:
            raise ConfigurationError(
                f"{spec.text!r}: option {name}={raw!r} is not a number"
            ) from None
        if not value >= 0 or value == float("inf"):
            raise ConfigurationError(f"{spec.text!r}: option {name} must be a finite number >= 0")
        return value

    kwargs: dict[str, Any] = {
        "seed": spec.int_option("seed", 0),
        "rate": number("rate"),
        "count": spec.int_option("count"),
        "accounts": spec.int_option("accounts", 10_000, minimum=2),
        "burst_size": spec.int_option("burst-size", 8, minimum=1),
        "spacing_ms": spec.int_option("spacing-ms", 10),
        "base_time_ms": spec.int_option("base-time-ms", DEFAULT_BASE_TIME_MS),
        "time": spec.option("time", "sequence"),
    }
    for option, name in _FLOAT_OPTIONS.items():
        value = number(option)
        if value is not None:
            kwargs[name] = value
    burst_amount = number("burst-amount")
    if burst_amount is not None:
        kwargs["burst_amount"] = burst_amount
    try:
        return TransactionGenerator(**kwargs)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{spec.text!r}: {exc}") from None
