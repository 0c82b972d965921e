"""The ``stelae`` command as a person runs it: a child process, text on stdout and stderr.

Every test that runs the command goes through here, so each runs it the same way: the caller's
environment without any ``STELAE_*`` variable (a developer's own log URL, key or data directory
must never leak into a test; a test sets what it means), this checkout first on ``PYTHONPATH``,
stdin closed (a command that would prompt fails instead of hanging) and a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def stelae_command() -> list[str]:
    """The installed ``stelae`` script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("stelae")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from stelae.cli.main import main; main()"]


def stelae_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without ``STELAE_*``, with this checkout on ``PYTHONPATH``, then *env*."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STELAE_")}
    return {**inherited, "PYTHONPATH": str(REPO), **(env or {})}


def run_stelae(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``python -m stelae ARGS`` to completion; the caller asserts on the status and output."""
    return subprocess.run(
        [sys.executable, "-m", "stelae", *args],
        cwd=cwd,
        env=stelae_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """*proc* exited 0 without a traceback; returned for its output."""
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def failed(proc: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """*proc* exited *status* (1: a failure, 2: a usage error) without a traceback; returns
    its stderr, for the test to check that it names the problem."""
    assert proc.returncode == status, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


def spawn_stelae(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    """``stelae ARGS`` as a long-running child (a server, the monitor), stderr piped and
    unbuffered so that :func:`read_stderr_until` sees each announcement as it is printed."""
    return subprocess.Popen(
        [*stelae_command(), *args],
        cwd=cwd,
        env=stelae_env({"PYTHONUNBUFFERED": "1", **(env or {})}),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """*proc* for the ``with`` block; killed and waited for if it is still running at the end,
    so a test that fails midway leaves no child behind (Popen's own ``with`` only waits)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_stderr_until(proc: subprocess.Popen[str], done: Callable[[str], bool]) -> list[str]:
    """The child's stderr lines up to and including the first for which *done* is true.

    Blocking reads, no sleeping: this returns the moment the line is printed. A child that exits
    first fails the test with everything it printed."""
    assert proc.stderr is not None
    lines: list[str] = []
    while True:
        line = proc.stderr.readline()
        if not line:
            proc.wait(10)
            raise AssertionError(f"{proc.args!r} exited {proc.returncode}: {''.join(lines)}")
        lines.append(line)
        if done(line):
            return lines
