"""The demo's transaction record, as the engine carries it."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["TRANSACTION_FIELDS", "Transaction"]


class Transaction(NamedTuple):
    """One payment, with the demo's fields (camelCase on the wire, see ``TRANSACTION_FIELDS``).

    A tuple, so that it is cheap to create, pickle and compare; fields are also reachable
    by their wire names through ``TRANSACTION_FIELDS`` (index by camelCase name).
    """

    transaction_id: int
    event_time: int
    payee_id: int
    beneficiary_id: int
    payment_amount: float
    payment_type: str
    ingestion_timestamp: int


#: Wire (camelCase) field name -> tuple index.
TRANSACTION_FIELDS: dict[str, int] = {
    "transactionId": 0,
    "eventTime": 1,
    "payeeId": 2,
    "beneficiaryId": 3,
    "paymentAmount": 4,
    "paymentType": 5,
    "ingestionTimestamp": 6,
}
