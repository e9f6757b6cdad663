"""The operations documentation names every metric and every setting."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

from gateway.config import ENVIRONMENT_VARIABLES
from gateway.observability import metrics

ROOT = Path(__file__).resolve().parents[2]


def test_every_metric_is_in_the_operations_guide():
    guide = (ROOT / "docs" / "operations.md").read_text()
    collectors = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    assert len(collectors) > 10
    for collector in collectors:
        name = collector._name + ("_total" if isinstance(collector, Counter) else "")
        assert f"`{name}`" in guide, name


def test_every_environment_variable_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for variable in ENVIRONMENT_VARIABLES:
        assert f"`{variable}`" in readme, variable
