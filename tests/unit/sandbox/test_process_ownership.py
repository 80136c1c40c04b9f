"""A PID recorded in sandbox.json is only signalled while it runs the recorded command.

The plugin's and the stand-in's argv[0] is the Python interpreter, so comparing the
program name alone would take any Python process that reused the PID for ours.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from secretkit.sandbox.servers.processes import ManagedProcess


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_another_python_process_on_the_pid_is_not_ours(
    stranger: subprocess.Popen[bytes],
) -> None:
    recorded = ManagedProcess(name="kms-plugin", pid=stranger.pid,
                              argv=[sys.executable, "-m", "kms_plugin", "--socket", "/x"],
                              log_path=None)
    assert not recorded.is_running()
    recorded.stop(timeout=1)  # nothing to stop: the stranger lives on
    assert stranger.poll() is None


def test_the_recorded_command_is_ours(stranger: subprocess.Popen[bytes]) -> None:
    recorded = ManagedProcess(name="sleeper", pid=stranger.pid, argv=list(stranger.args),  # type: ignore[arg-type]
                              log_path=None)
    assert recorded.is_running()
