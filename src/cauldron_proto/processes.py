"""Child processes: stopping one cleanly, and for sure."""

from __future__ import annotations

import signal
import subprocess

__all__ = ["terminate"]


def terminate(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM ``process`` (SIGCONT first, in case it is stopped) so it can stop cleanly; kill
    it if it is still there after ``timeout`` seconds. Returns its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.terminate()
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
