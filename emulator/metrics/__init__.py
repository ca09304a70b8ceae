"""Metrics: the collector samples tasks into CloudWatch's figures, the store keeps them, the exporter serves them.

    metrics = MetricsStore()
    collector = MetricsCollector(state, runtime, clock, metrics, alb, cpu_scale=..., memory_scale=...)
    exporter = MetricsExporter(metrics, state, alb, clock=clock)
    add_metrics_route(app, exporter)          # GET /metrics
    loop.create_task(collector.run())
"""

from .collector import Collection, MetricsCollector, TaskReading
from .exporter import MetricsExporter, add_metrics_route, scrape_text
from .store import MetricKey, MetricsStore, Sample, dimensions

__all__ = ["Collection", "MetricKey", "MetricsCollector", "MetricsExporter", "MetricsStore", "Sample", "TaskReading",
           "add_metrics_route", "dimensions", "scrape_text"]
