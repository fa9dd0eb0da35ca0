"""The command line's usage errors, connector specs, and the in-process connectors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.cli import main
from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.inprocess import CallbackSink, QueueSource
from fraudstream.connectors.specs import ConnectorSpec, make_sink, make_source, parse_spec
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError


def test_spec_with_path_and_options() -> None:
    spec = parse_spec("jsonl:out/alerts.jsonl,time-field=eventTime")
    assert spec == ConnectorSpec(
        "jsonl", "out/alerts.jsonl", {"time-field": "eventTime"}, spec.text
    )


def test_spec_with_only_options() -> None:
    spec = parse_spec("generator:rate=5,count=1_000")
    assert (spec.scheme, spec.target) == ("generator", "")
    assert spec.int_option("count") == 1000
    assert spec.int_option("seed", 7) == 7


def test_spec_url_form_with_query() -> None:
    spec = parse_spec("kafka://127.0.0.1:9092/alerts?partitions=4&group=g")
    assert (spec.scheme, spec.target) == ("kafka", "127.0.0.1:9092/alerts")
    assert spec.options == {"partitions": "4", "group": "g"}


def test_bare_scheme() -> None:
    assert parse_spec(" print ") == ConnectorSpec("print", "", {}, "print")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty connector spec"),
        ("   ", "empty connector spec"),
        ("generator:count=1,junk", "'junk' is not key=value"),
        ("jsonl:x,=3", "is not key=value"),
        ("bad scheme!:x", "bad connector scheme"),
    ],
)
def test_malformed_specs_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_spec(text)


def test_integer_options_are_checked() -> None:
    spec = parse_spec("generator:count=abc,rate=-1")
    with pytest.raises(ConfigurationError, match="count='abc' is not an integer"):
        spec.int_option("count")
    with pytest.raises(ConfigurationError, match="rate must be >= 0"):
        spec.int_option("rate")


def test_unknown_schemes_name_the_spec() -> None:
    with pytest.raises(ConfigurationError, match="unknown source 'nosuch'"):
        make_source("nosuch:x", "transactions")
    with pytest.raises(ConfigurationError, match="unknown sink 'nosuch'"):
        make_sink("nosuch:x", "alerts")


@given(st.text(max_size=200))
def test_any_text_parses_or_fails_with_a_configuration_error(text: str) -> None:
    try:
        spec = parse_spec(text)
    except ConfigurationError:
        return
    assert spec.scheme == spec.scheme.strip().lower()
    assert spec.scheme


def test_queue_source_feeds_a_running_job_until_closed() -> None:
    rules: QueueSource[int] = QueueSource(initial=[1, 2])
    seen: list[int] = []
    done = threading.Event()

    def collect(batch: Sequence[int]) -> None:
        seen.extend(batch)
        if len(seen) >= 4:
            done.set()

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_source(rules, WatermarkStrategy.no_watermarks(), "rules").map(
        lambda x: x * 10
    ).sink_to(CallbackSink(collect))
    client = env.execute_async("queue")
    rules.put(3)
    rules.put(4)
    assert done.wait(10)
    rules.close()
    client.get_job_execution_result().result()
    assert seen == [10, 20, 30, 40]
    assert client.get_job_status() == "FINISHED"
    with pytest.raises(RuntimeError, match="closed"):
        rules.put(5)


def test_cli_without_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_cli_run_missing_program(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", str(tmp_path / "missing.py")]) == 2
    assert "no such program file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["job", "tutorial", "--parallelism", "0"], "must be at least 1"),
        (["job", "tutorial", "--parallelism", "two"], "is not an integer"),
        (["job", "nosuchjob"], "invalid choice"),
    ],
)
def test_cli_job_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_job_unknown_source_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["job", "tutorial", "--source", "nosuch:x"]) == 2
    assert "unknown source 'nosuch'" in capsys.readouterr().err


def test_cli_restore_needs_a_checkpoint_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["job", "tutorial", "--from-checkpoint", "latest"]) == 2
    assert "--from-checkpoint needs --checkpoint-dir" in capsys.readouterr().err


def test_cli_bench_names_the_available_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no benchmark 'nosuch'" in err
    assert "tutorial" in err


def test_cli_bench_runs_a_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "tutorial", "--events", "20000"]) == 0
    out = capsys.readouterr().out
    assert "fraudstream p=1" in out
    assert "plain loop" in out


def test_rules_job_alerts_do_not_depend_on_parallelism(tmp_path: Path) -> None:
    outputs = []
    for parallelism in ("1", "2"):
        out = tmp_path / f"alerts-{parallelism}.jsonl"
        code = main(
            [
                "job",
                "rules",
                "--source",
                "generator:count=20000,seed=7",
                "--sink",
                f"jsonl:{out}",
                "-p",
                parallelism,
            ]
        )
        assert code == 0
        lines = out.read_text().splitlines()
        outputs.append(sorted(_without_alert_time(line) for line in lines))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 10


def _without_alert_time(line: str) -> str:
    import json

    record = json.loads(line)
    record.pop("alertTime")
    return json.dumps(record, sort_keys=True)
