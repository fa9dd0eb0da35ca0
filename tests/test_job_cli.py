"""``fraudstream job tutorial`` over generator, files and SQLite, in process and as a program."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fraudstream.cli import main
from fraudstream.connectors.codecs import (
    CSV_HEADER,
    encode_transaction_csv,
    encode_transaction_json,
)
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.connectors.sqlite import AlertStore
from fraudstream.fraud.transaction import Transaction

SPEC = "generator:count=20000,seed=5,tutorial-rate=0.01"


def generated(count: int = 20_000, seed: int = 5) -> list[Transaction]:
    reader = TransactionGenerator(seed=seed, count=count, tutorial_rate=0.01).create_reader(0, 1)
    out: list[Transaction] = []
    while (batch := reader.poll(1000)) is not None:
        out.extend(batch)
    return out


def expected_alerts(transactions: list[Transaction]) -> list[dict[str, object]]:
    """The tutorial's rule as a plain loop over the same transactions: the oracle."""
    flagged: set[int] = set()
    alerts: list[dict[str, object]] = []
    for tx in transactions:
        if tx.payee_id in flagged:
            if tx.payment_amount > 500.0:
                alerts.append(
                    {
                        "accountId": tx.payee_id,
                        "accountIdStr": str(tx.payee_id),
                        "timestamp": tx.event_time,
                        "amount": tx.payment_amount,
                    }
                )
            flagged.discard(tx.payee_id)
        if tx.payment_amount < 1.0:
            flagged.add(tx.payee_id)
    return alerts


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def oracle() -> list[dict[str, object]]:
    alerts = expected_alerts(generated())
    assert len(alerts) > 50
    return alerts


def test_generator_to_jsonl(tmp_path: Path, oracle: list[dict[str, object]]) -> None:
    out = tmp_path / "alerts.jsonl"
    assert main(["job", "tutorial", "--source", SPEC, "--sink", f"jsonl:{out}"]) == 0
    assert read_jsonl(out) == oracle


@pytest.mark.parametrize("parallelism", [1, 2])
def test_generator_to_jsonl_with_checkpoints(
    tmp_path: Path, oracle: list[dict[str, object]], parallelism: int
) -> None:
    out = tmp_path / "alerts.jsonl"
    code = main(
        [
            "job", "tutorial", "--source", SPEC, "--sink", f"jsonl:{out}",
            "--checkpoint-dir", str(tmp_path / "chk"), "--checkpoint-interval", "5",
            "--parallelism", str(parallelism),
        ]
    )  # fmt: skip
    assert code == 0
    assert any((tmp_path / "chk").glob("chk-*"))  # checkpoints were taken along the way
    got = read_jsonl(out)
    if parallelism == 1:
        assert got == oracle
    else:
        assert sorted(got, key=json.dumps) == sorted(oracle, key=json.dumps)


def test_jsonl_and_csv_files_give_the_alerts_of_the_generator(
    tmp_path: Path, oracle: list[dict[str, object]]
) -> None:
    transactions = generated()
    jsonl = tmp_path / "tx.jsonl"
    jsonl.write_bytes(b"".join(encode_transaction_json(tx) + b"\n" for tx in transactions))
    csv = tmp_path / "tx.csv"
    csv.write_bytes(
        CSV_HEADER + b"".join(encode_transaction_csv(tx) + b"\n" for tx in transactions)
    )
    for source in (f"jsonl:{jsonl}", f"csv:{csv}"):
        out = tmp_path / f"alerts-{source[:3]}.jsonl"
        assert main(["job", "tutorial", "--source", source, "--sink", f"jsonl:{out}"]) == 0
        assert read_jsonl(out) == oracle


def test_sqlite_sink(tmp_path: Path, oracle: list[dict[str, object]]) -> None:
    db = tmp_path / "alerts.db"
    assert main(["job", "tutorial", "--source", SPEC, "--sink", f"sqlite:{db}"]) == 0
    with AlertStore(db) as store:
        assert store.count() == len(oracle)
        assert list(store.iter_all()) == oracle


def test_bad_records_go_to_the_dead_letters_and_the_job_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transactions = generated(3000)
    lines = [encode_transaction_json(tx) for tx in transactions]
    lines[10:10] = [b"garbage", b'{"transactionId": -1}', b"[1,2]"]
    source = tmp_path / "tx.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in lines))
    out = tmp_path / "alerts.jsonl"
    dead = tmp_path / "dead.jsonl"
    code = main(
        ["job", "tutorial", "--source", f"jsonl:{source}", "--sink", f"jsonl:{out}",
         "--dead-letters", f"jsonl:{dead}"]
    )  # fmt: skip
    assert code == 0
    assert read_jsonl(out) == expected_alerts(transactions)
    letters = read_jsonl(dead)
    assert [letter["raw"] for letter in letters] == ["garbage", '{"transactionId": -1}', "[1,2]"]
    offset = sum(len(line) + 1 for line in lines[:10])
    assert letters[0]["position"] == f"offset {offset}"
    assert letters[2]["reason"] == "not a JSON object (got a JSON array)"
    err = capsys.readouterr().err
    assert f"3 bad record(s) went to the dead letters (jsonl:{dead}); 3000 good record(s)" in err


def test_without_dead_letters_option_bad_records_are_reported_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tx.jsonl"
    source.write_bytes(b"oops\n" + encode_transaction_json(generated(1)[0]) + b"\n")
    assert main(["job", "tutorial", "--source", f"jsonl:{source}", "--sink", "print"]) == 0
    err = capsys.readouterr().err
    assert f"dead letter from jsonl:{source} at offset 0: not valid JSON" in err
    assert "1 bad record(s) went to the dead letters (stderr); 1 good record(s)" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "jsonl:{d}/missing.jsonl"], "no such file"),
        (["--source", "csv:{d}"], "a directory, not a file"),
        (["--source", "generator:count=-3"], "count must be >= 0"),
        (["--source", "generator:count=ten"], "count='ten' is not an integer"),
        (["--source", "generator:speed=9"], "unknown generator option(s) speed"),
        (["--source", "jsonl:{d}/in.jsonl,follow=perhaps"], "must be true or false"),
        (["--source", "nosuch:x"], "unknown source 'nosuch'"),
        (["--sink", "jsonl:{d}/no/dir/out.jsonl"], "no such directory"),
        (["--sink", "sqlite:{d}"], "is a directory"),
        (["--sink", "nosuch:x"], "unknown sink 'nosuch'"),
        (["--dead-letters", "jsonl:{d}/no/dir/dead.jsonl"], "no such directory"),
        (
            ["--source", "generator:count=10", "--from-checkpoint", "latest"],
            "needs --checkpoint-dir",
        ),
        (["--checkpoint-interval", "50"], "--checkpoint-interval needs --checkpoint-dir"),
        (["--checkpoint-dir", ""], "--checkpoint-dir is empty"),
        (["--checkpoint-dir", "{d}/c", "--from-checkpoint", " "], "--from-checkpoint is empty"),
        (["--checkpoint-dir", "{d}/in.jsonl"], "cannot be created"),
        (["--checkpoint-dir", "{d}/in.jsonl/c"], "cannot be created"),
        (["--checkpoint-dir", "{d}/" + "c" * 300], "cannot be created"),
        (["--checkpoint-dir", "{d}/c", "--from-checkpoint", "{d}/gone"], "does not exist"),
        (["--checkpoint-dir", "{d}/c", "--from-checkpoint", "{d}"], "is not a checkpoint"),
        (["-p", "100000"], "more than the 1024 workers"),
        (["--max-parallelism", "100000"], "must be in [1, 32768]"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "in.jsonl").write_bytes(b"")
    argv = ["job", "tutorial", *[a.format(d=tmp_path) for a in args]]
    if "--sink" not in argv:
        argv += ["--sink", f"jsonl:{tmp_path / 'out.jsonl'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["--parallelism", "0"], ["--checkpoint-interval", "-5"]])
def test_bad_numbers_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["job", "tutorial", *args])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_as_a_program(tmp_path: Path, oracle: list[dict[str, object]]) -> None:
    out = tmp_path / "alerts.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", "job", "tutorial", "--source", SPEC,
         "--sink", f"jsonl:{out}", "--checkpoint-dir", str(tmp_path / "chk")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_jsonl(out) == oracle
    missing = subprocess.run(
        [sys.executable, "-m", "fraudstream", "job", "tutorial", "--source",
         f"jsonl:{tmp_path / 'nope.jsonl'}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_dead_letters_printed_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tx.jsonl"
    source.write_bytes(b'{"oops": true}\n')
    out = tmp_path / "alerts.jsonl"
    argv = ["job", "tutorial", "--source", f"jsonl:{source}", "--sink", f"jsonl:{out}"]
    assert main([*argv, "--dead-letters", "print:stderr"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert json.loads(first)["reason"].startswith("missing fields 'transactionId'")
    assert out.read_text() == ""


DEMO_RULES = [
    {"ruleId": 1, "ruleState": "ACTIVE", "groupingKeyNames": ["payeeId", "beneficiaryId"],
     "aggregateFieldName": "paymentAmount", "aggregatorFunctionType": "SUM",
     "limitOperatorType": "GREATER", "limit": 20000000, "windowMinutes": 43200},
    {"ruleId": 3, "ruleState": "ACTIVE", "groupingKeyNames": ["beneficiaryId"],
     "aggregateFieldName": "paymentAmount", "aggregatorFunctionType": "SUM",
     "limitOperatorType": "GREATER_EQUAL", "limit": 10000000, "windowMinutes": 1440},
]  # fmt: skip


def test_generated_fraud_bursts_trip_the_demo_rules_in_the_rules_job(tmp_path: Path) -> None:
    rules = tmp_path / "rules.jsonl"
    rules.write_text("".join(json.dumps(rule) + "\n" for rule in DEMO_RULES) + "not a rule\n")
    out = tmp_path / "alerts.jsonl"
    spec = "generator:count=20000,seed=3,fraud-rate=0.002"
    argv = ["job", "rules", "--source", spec, "--rules", f"jsonl:{rules}", "--sink", f"jsonl:{out}"]
    assert main([*argv, "--dead-letters", f"jsonl:{tmp_path / 'dead.jsonl'}"]) == 0
    gen = TransactionGenerator(seed=3, count=20000, fraud_rate=0.002)
    alerts = read_jsonl(out)
    by_rule = {1: 0, 3: 0}
    for alert in alerts:
        event = alert["triggeringEvent"]
        assert isinstance(event, dict) and isinstance(alert["ruleId"], int)
        assert event["beneficiaryId"] == gen.fraud_beneficiary  # rule 3 keys by beneficiary
        if alert["ruleId"] == 1:
            assert event["payeeId"] == gen.fraud_payee
        by_rule[alert["ruleId"]] += 1
    assert by_rule[1] > 5 and by_rule[3] > 5
    assert [d["raw"] for d in read_jsonl(tmp_path / "dead.jsonl")] == ["not a rule"]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_kill_9_and_restore_ends_with_the_file_of_an_uninterrupted_run(
    tmp_path: Path, parallelism: int
) -> None:
    import os
    import signal
    import time

    reference = tmp_path / "reference.jsonl"
    assert main(["job", "tutorial", "--source", SPEC, "--sink", f"jsonl:{reference}"]) == 0
    out, checkpoints = tmp_path / "alerts.jsonl", tmp_path / "chk"
    argv = [
        sys.executable, "-m", "fraudstream", "job", "tutorial",
        "--source", SPEC + ",rate=10000", "--sink", f"jsonl:{out}", "-p", str(parallelism),
        "--checkpoint-dir", str(checkpoints), "--checkpoint-interval", "100",
    ]  # fmt: skip
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    commits = tmp_path / ".alerts.jsonl.commits"
    deadline = time.monotonic() + 60
    try:
        # Poll (no fixed sleep) until some alerts are committed, then kill mid-stream.
        while not (commits.exists() and commits.read_text().count("\nC ") >= 2):
            assert first.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no commit within 60 s"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        assert first.stderr is not None
        first.stderr.close()
    partial = out.read_text()
    assert 0 < partial.count("\n") < reference.read_text().count("\n")
    second = subprocess.run(
        [*argv[:6], SPEC, *argv[7:], "--from-checkpoint", "latest"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    if parallelism == 1:
        assert out.read_text() == reference.read_text()
    else:
        assert sorted(out.read_text().splitlines()) == sorted(reference.read_text().splitlines())


def test_a_damaged_newest_checkpoint_is_one_warning_line_and_the_output_stays_whole(
    tmp_path: Path, oracle: list[dict[str, object]]
) -> None:
    out, checkpoints = tmp_path / "alerts.jsonl", tmp_path / "chk"
    args = ["job", "tutorial", "--source", SPEC, "--sink", f"jsonl:{out}",
            "--checkpoint-dir", str(checkpoints), "--checkpoint-interval", "5"]  # fmt: skip
    assert main(args) == 0
    newest = max(checkpoints.glob("chk-*"), key=lambda p: int(p.name[4:]))
    (newest / "state.bin").write_bytes(b"damaged")
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", *args, "--from-checkpoint", "latest"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "falling back" in line]
    assert len(warning) == 1 and warning[0].startswith("fraudstream: warning: checkpoint ")
    assert "RuntimeWarning" not in done.stderr and "storage.latest()" not in done.stderr
    # Restored from the checkpoint before: nothing is lost. Alerts committed after it (on
    # the damaged one, or at the end of input) are written again, as when Flink restores
    # an older checkpoint: a file sink does not take back what it committed.
    got = read_jsonl(out)
    assert {json.dumps(a) for a in got} == {json.dumps(a) for a in oracle}
    assert got[: len(oracle)] == oracle


@pytest.mark.parametrize(("hard", "works"), [(200, False), (4096, True)])
def test_many_workers_raise_the_open_file_limit_or_say_why_not(
    tmp_path: Path, hard: int, works: bool
) -> None:
    import resource

    def limit_files() -> None:  # in the child: a soft limit of 200, and this hard one
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))

    out = tmp_path / "alerts.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", "job", "tutorial", "-p", "12", "--workers", "12",
         "--source", "generator:count=20000,seed=5,tutorial-rate=0.01", "--sink", f"jsonl:{out}"],
        capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit_files,
    )  # fmt: skip
    if works:
        assert done.returncode == 0, done.stderr
        assert len(read_jsonl(out)) > 0
    else:
        assert done.returncode == 2
        assert "more than this process may open (200; raise it with `ulimit -n`)" in done.stderr
        assert "Traceback" not in done.stderr
