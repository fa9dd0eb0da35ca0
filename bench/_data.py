"""Deterministic benchmark inputs shared by every engine in a run, and the tutorial
detector as a Bytewax ``stateful_map`` step (used by two benchmarks)."""

from __future__ import annotations

__all__ = ["bytewax_detect", "tutorial_transactions"]


def bytewax_detect(flag: bool | None, t: tuple[int, int, float]) -> tuple[bool | None, int]:
    """The FraudDetector's logic as a Bytewax step: (new flag, 1 for an alert else 0)."""
    alert = 0
    if flag is not None:
        if t[2] > 500.0:
            alert = 1
        flag = None
    if t[2] < 1.0:
        flag = True
    return flag, alert


def tutorial_transactions(
    count: int, accounts: int = 10_000, seed: int = 42
) -> list[tuple[int, int, float]]:
    """``(account_id, timestamp, amount)`` tuples: mostly ordinary amounts, ~3% small, ~3% large.

    A 64-bit linear congruential generator keeps the data identical across processes,
    engines and Python versions.
    """
    state = seed & 0xFFFFFFFFFFFFFFFF
    out = []
    mult, inc, mask = 6364136223846793005, 1442695040888963407, 0xFFFFFFFFFFFFFFFF
    for i in range(count):
        state = (state * mult + inc) & mask
        account = (state >> 33) % accounts
        state = (state * mult + inc) & mask
        bucket = (state >> 33) % 100
        if bucket < 3:
            amount = round(((state >> 20) % 100) / 100, 2)  # small: < 1.00
        elif bucket < 6:
            amount = 500.01 + (state >> 20) % 1000
        else:
            amount = 1.0 + (state >> 20) % 499
        out.append((account, 1_700_000_000_000 + i, float(amount)))
    return out
