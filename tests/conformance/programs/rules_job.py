# mypy: disallow-subclassing-any=False
"""The dynamic rules job, with the demo's rules, over a generated transactions file.

A PyFlink program that imports fraudstream's rules job: under ``fraudstream run`` the
job's API is fraudstream's; in a Flink interpreter with fraudstream on ``PYTHONPATH``
and its reverse alias installed (``fraudstream.flink``) it is PyFlink's. The file is
generated from a fixed seed, so both engines read the same transactions; the demo rules
are in force from the start, so no alert depends on when rules arrive.

    python rules_job.py [TRANSACTIONS.jsonl]   # generates the file when not given
"""

import sys
import tempfile
from pathlib import Path
from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

from fraudstream.connectors.base import ReaderContext
from fraudstream.connectors.codecs import decode_transaction_json, encode_transaction_json
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.fraud.rules import DEMO_RULES, build_rules_job, parse_rule

COUNT = 2000
SEED = 7


def generate(path: Path) -> None:
    reader = TransactionGenerator(seed=SEED, count=COUNT).create_reader(0, 1)
    reader.open(ReaderContext())
    with path.open("wb") as out:
        while (batch := reader.poll(500)) is not None:
            out.writelines(encode_transaction_json(t) + b"\n" for t in batch)
    reader.close()


def main(path: Path) -> None:
    transactions = [decode_transaction_json(line) for line in path.read_bytes().splitlines()]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    no_changes: Any = env.from_collection([0], type_info=Types.INT()).filter(lambda _: False)
    streams = build_rules_job(
        env.from_collection(transactions),
        no_changes,
        initial_rules=[parse_rule(rule) for rule in DEMO_RULES],
        out_of_orderness_ms=5000,
    )
    streams.alerts.map(str, output_type=Types.STRING()).print()
    env.execute("rules job")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            generated = Path(folder) / "transactions.jsonl"
            generate(generated)
            main(generated)
