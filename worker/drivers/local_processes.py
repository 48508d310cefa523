"""Processes of the local target: started detached, found again by pid and command line, stopped by group.

Each serving process and the router is started in a session of its own (``start_new_session``), so it
outlives the worker that started it and a signal to its process group reaches all of it. The driver records
its pid in the state folder; ``running`` trusts a pid only when ``/proc/<pid>/cmdline`` still shows the
command the driver started (a recycled pid is someone else's process) and it is not a zombie.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from apps.deployments.plans import DriverError

ROOT = Path(__file__).resolve().parents[2]

# Popen objects of the processes this interpreter started, so their exit is collected (no zombies).
_children: dict[int, subprocess.Popen] = {}


def start_detached(args: list[str], *, log: Path) -> int:
    """``python <args>`` from the project's root, detached, its output appended to ``log``; its pid."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    env["PYTHONUNBUFFERED"] = "1"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def _reaped(pid: int) -> bool:
    """True when ``pid`` was our child and has exited (its exit is collected here)."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        _children.pop(pid, None)
        return True
    return False


def running(pid: int | None, *markers: str) -> bool:
    """Whether ``pid`` is alive, not a zombie, and its command line holds every one of ``markers``."""
    if not pid or _reaped(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    return all(m.encode() in cmdline for m in markers)


def stop(pid: int | None, *markers: str, timeout: float = 3.0) -> None:
    """SIGTERM to the process group of ``pid`` (if it is still the process started), SIGKILL after ``timeout``."""
    if not running(pid, *markers):
        return
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not running(pid):
                return
            time.sleep(0.02)
    if running(pid):
        raise DriverError(f"process {pid} did not stop")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(port_range: tuple[int, int] | None, taken: set[int]) -> int:
    """A port on 127.0.0.1 nothing listens on: the first free one of ``port_range``, else one the system picks."""
    if port_range is None:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in taken:
                return port
    else:
        for port in range(port_range[0], port_range[1] + 1):
            if port not in taken and port_free(port):
                return port
    raise DriverError(f"no free port on 127.0.0.1 in {port_range or 'the ephemeral range'}")


def log_tail(log: Path, lines: int = 3) -> str:
    """The last lines of a process's log, for an error message (these logs hold no credentials)."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (one driver call at a time on a target, across worker processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
