"""What ``/metrics`` exposes about a running demo, as Prometheus samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudstream.service.metrics import MetricSample

if TYPE_CHECKING:
    from fraudstream.service.engine import DemoEngine

__all__ = ["demo_metric_samples"]


def demo_metric_samples(engine: DemoEngine) -> list[MetricSample]:
    """Everything ``/metrics`` exposes about ``engine``."""
    p50, p99 = engine.latency.percentiles(0.5, 0.99)
    a50, a99 = engine.alert_latency.percentiles(0.5, 0.99)
    samples = [
        MetricSample(
            "fraudstream_events_total", "Transactions processed.", "counter", engine.events.total
        ),
        MetricSample(
            "fraudstream_events_per_second",
            "Transactions processed per second (2 s window).",
            "gauge",
            engine.events.per_second(),
        ),
        MetricSample("fraudstream_alerts_total", "Alerts raised.", "counter", engine.alerts.total),
        MetricSample(
            "fraudstream_alerts_per_second",
            "Alerts raised per second (2 s window).",
            "gauge",
            engine.alerts.per_second(),
        ),
        MetricSample(
            "fraudstream_dead_letters_total",
            "Records that failed to parse or validate.",
            "counter",
            engine.dead_letters.total,
        ),
        MetricSample(
            "fraudstream_latency_ms",
            "Processing latency of recent transactions, ms.",
            "gauge",
            p50,
            (("quantile", "0.5"),),
        ),
        MetricSample("fraudstream_latency_ms", "", "gauge", p99, (("quantile", "0.99"),)),
        MetricSample(
            "fraudstream_alert_latency_ms",
            "Transaction ingestion to alert, ms.",
            "gauge",
            a50,
            (("quantile", "0.5"),),
        ),
        MetricSample("fraudstream_alert_latency_ms", "", "gauge", a99, (("quantile", "0.99"),)),
        MetricSample(
            "fraudstream_checkpoint_age_seconds",
            "Seconds since the last completed checkpoint.",
            "gauge",
            engine.checkpoint_age_s(),
        ),
        MetricSample(
            "fraudstream_rules", "Rules in the rule book.", "gauge", len(engine.list_rules())
        ),
        MetricSample(
            "fraudstream_job_running",
            "1 while the rules job runs.",
            "gauge",
            1.0 if engine.job_status() == "RUNNING" else 0.0,
        ),
    ]
    for hub in engine.hubs():
        labels = (("stream", hub.name),)
        samples += [
            MetricSample(
                "fraudstream_ws_clients",
                "Connected WebSocket clients.",
                "gauge",
                hub.subscriber_count,
                labels,
            ),
            MetricSample(
                "fraudstream_ws_dropped_total",
                "Items dropped because a WebSocket client was too slow.",
                "counter",
                hub.dropped,
                labels,
            ),
            MetricSample(
                "fraudstream_ws_sampled_out_total",
                "Items not sent to browsers because the stream was sampled.",
                "counter",
                hub.sampled_out,
                labels,
            ),
        ]
    return samples
