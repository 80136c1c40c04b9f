"""Run a monitor in a thread and read its metrics, for the monitor's tests."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from secretkit.core.formats import encode_unknown
from secretkit.monitor.options import ListenAddress, MonitorOptions
from secretkit.monitor.run import Monitor

T = TypeVar("T")

#: a tiny Secret as the apiserver stores it without encryption (k8s\0 envelope)
PLAINTEXT_SECRET = encode_unknown("v1", "Secret", b"\x0a\x04\x0a\x02db")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fast_options(**overrides: Any) -> MonitorOptions:
    """Options with a free port and short schedules (tests do not wait long)."""
    values: dict[str, Any] = {
        "metrics_addr": ListenAddress("127.0.0.1", 0),
        "lag_every": 0.2,
        "check_every": 0.5,
    }
    values.update(overrides)
    return MonitorOptions(**values)


@contextmanager
def running_monitor(options: MonitorOptions, client: Any) -> Iterator[Monitor]:
    """A monitor running in a thread until the block ends (then stopped and joined)."""
    monitor = Monitor(options, client)
    thread = threading.Thread(target=monitor.run, name="test-monitor", daemon=True)
    thread.start()
    try:
        wait_for(lambda: monitor.metrics.is_following, what="the monitor to follow etcd")
        yield monitor
    finally:
        monitor.stop()
        thread.join(15)
        assert not thread.is_alive(), "the monitor did not stop"


def fetch(url: str) -> tuple[int, str]:
    """GET ``url`` (no proxy); (status, body)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape_text(address: ListenAddress) -> str:
    """The /metrics text of a monitor."""
    code, text = fetch(f"http://{address.host}:{address.port}/metrics")
    assert code == 200, text
    return text


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(address: ListenAddress) -> Samples:
    """Parsed /metrics of a monitor."""
    return parse(scrape_text(address))


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def objects(samples: Samples, verdict: str, resource: str = "secrets", **labels: str) -> float:
    """Sum of secretkit_monitor_objects over rows matching the labels given."""
    total = 0.0
    wanted = {"verdict": verdict, "resource": resource, **labels}
    for (name, have), found in samples.items():
        if name == "secretkit_monitor_objects" and wanted.items() <= dict(have).items():
            total += found
    return total


def wait_for(
    probe: Callable[[], T], *, timeout: float = 15.0, what: str = "a condition"
) -> T:
    """Poll ``probe`` until truthy; its value. AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
