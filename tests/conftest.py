"""Suite-wide pytest configuration.

Real servers (etcd, OpenBao, moto, the sandbox) are started by session fixtures in
``tests/fixtures/``. A test that needs one carries a marker (``etcd``, ``vault``,
``aws``, ``e2e``, ``kubectl``); if any such test is *skipped*, the run fails, so the
integration suites can never pass vacuously (set SECRETKIT_ALLOW_SKIPS=1 to allow
skips while developing).
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.sandbox"]

REAL_SERVER_MARKERS = frozenset({"etcd", "vault", "aws", "e2e", "kubectl"})
_skipped_real: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every skipped test that needed a real server."""
    if report.skipped and REAL_SERVER_MARKERS.intersection(report.keywords):
        _skipped_real.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a real-server test was skipped."""
    if _skipped_real and os.environ.get("SECRETKIT_ALLOW_SKIPS") != "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly which real-server tests were skipped."""
    if _skipped_real:
        terminalreporter.section("real-server tests were SKIPPED (this fails the run)")
        for nodeid in _skipped_real:
            terminalreporter.write_line(nodeid)
