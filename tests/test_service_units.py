"""The service's own seams on their own: measurements, Prometheus text, ids, settings."""

from __future__ import annotations

import pytest

import fraudstream.service
from fraudstream.exceptions import ConfigurationError
from fraudstream.service import DemoEngine, create_app
from fraudstream.service.engine import default_rules, exact_ids
from fraudstream.service.metrics import (
    LatencyWindow,
    MetricSample,
    RateMeter,
    render_prometheus,
)


def test_the_public_names_of_the_service_package() -> None:
    assert sorted(fraudstream.service.__all__) == ["DemoEngine", "create_app"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_meter_counts_over_its_window_only() -> None:
    clock = FakeClock()
    meter = RateMeter(window_s=2.0, clock=clock)
    meter.add(100)
    clock.now += 0.5
    meter.add(100)
    assert meter.per_second() == 100.0  # 200 events over a 2 s window
    clock.now += 2.0
    meter.add(10)
    assert meter.per_second() == 5.0  # the first two batches left the window
    assert meter.total == 210


def test_latency_percentiles_are_nearest_rank_over_the_ring() -> None:
    window = LatencyWindow(capacity=100)
    assert window.percentiles(0.5) == [None]
    window.add_many(float(v) for v in range(1, 201))  # only the last 100 are kept
    assert window.percentiles(0.0, 0.5, 0.99, 1.0) == [101.0, 150.0, 199.0, 200.0]
    assert len(window.drain()) == 100
    assert window.percentiles(0.5) == [None]


def test_prometheus_text_has_help_and_type_once_and_escapes_labels() -> None:
    text = render_prometheus(
        [
            MetricSample("m_total", "Things.", "counter", 3),
            MetricSample("m_q", "Quantiles.", "gauge", 1.5, (("quantile", "0.5"),)),
            MetricSample("m_q", "", "gauge", None, (("quantile", "0.99"),)),
            MetricSample("m_l", "Labels.", "gauge", 2, (("name", 'a"b\\c\nd'),)),
        ]
    )
    assert text.count("# TYPE m_q gauge") == 1
    assert 'm_q{quantile="0.5"} 1.5' in text
    assert "0.99" not in text  # a value not measured yet is absent, not NaN
    assert 'm_l{name="a\\"b\\\\c\\nd"} 2' in text
    assert text.endswith("\n")


def test_exact_ids_adds_strings_for_id_fields_at_every_level() -> None:
    big = 2**62 + 1
    out = exact_ids({"ruleId": 3, "triggeringEvent": {"transactionId": big, "x": big}, "n": 1})
    assert out["ruleIdStr"] == "3"
    assert out["triggeringEvent"]["transactionIdStr"] == str(big)
    assert "xStr" not in out["triggeringEvent"]
    assert "nStr" not in out


def test_the_packaged_demo_rules_are_the_four_of_the_demo() -> None:
    assert [r["ruleId"] for r in default_rules()] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "make",
    [
        lambda: DemoEngine(rate=-1),
        lambda: DemoEngine(rate=1e9),
        lambda: DemoEngine(checkpoint_interval_ms=100),  # checkpoints need a data directory
        lambda: create_app(DemoEngine(rate=0), ""),
    ],
    ids=["negative rate", "huge rate", "checkpoints in memory", "empty token"],
)
def test_bad_settings_are_refused(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


def test_speed_outside_the_range_is_refused_and_changes_nothing() -> None:
    engine = DemoEngine(rate=0)
    with pytest.raises(ConfigurationError):
        engine.set_speed(-5)
    assert engine.generator_status()["speed"] == 0
    engine.close()
