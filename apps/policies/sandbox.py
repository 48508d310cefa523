"""A small pool of sandboxed processes that compile and evaluate Rego packs within a budget.

A pack is code a compliance officer uploads; it must neither read the web process (its
environment holds the secret key, the audit signing key and database and storage credentials)
nor hold a web thread or grow its memory. So no pack runs in the web or worker process: each
process that asks for a decision keeps up to ``ASSAY_POLICY_SANDBOXES`` child processes
(``sandbox_child.py``), started with an empty environment and no Django, that compile each
module once, refuse it if it calls a built-in outside the allow-list, and answer queries.

The budget per evaluation (one pack on one input): ``ASSAY_POLICY_TIMEOUT_MS`` of wall-clock
time, after which this process kills the child, and ``ASSAY_POLICY_MEMORY_MB`` of address space
beyond the child's own, past which the child's allocation fails and it dies (and, checked from
here every 50 ms, resident memory beyond its size when it started). Either way the
caller gets ``BudgetExceeded`` naming the limit, and the next evaluation starts a fresh child.
A child whose resident size has grown past half the memory budget is retired after answering,
so a large but permitted evaluation does not keep its pages.

Threads share the pool: each evaluation checks a child out, so two threads never talk to one
child at once; a thread finding all children busy waits for one. A forked process (a Celery
prefork worker, a pre-loading web server) starts a pool of its own.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings

CHILD = Path(__file__).with_name("sandbox_child.py")
WATCH_SECONDS = 0.05  # while waiting for an answer, the child's resident size is checked this often
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
STARTUP_SECONDS = 30  # a child imports regopy before its first request (about 0.2 s; more on a busy machine)


class SandboxFailure(Exception):
    """The sandbox could not answer; ``reason`` is "time", "memory", "too_large", "crashed" or "stale"
    (an idle child had stopped before the request was sent: the request did not run)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def limits() -> tuple[int, int]:
    """(timeout in ms, memory in MB) per evaluation, from the settings."""
    timeout_ms = int(getattr(settings, "ASSAY_POLICY_TIMEOUT_MS", 1000))
    memory_mb = int(getattr(settings, "ASSAY_POLICY_MEMORY_MB", 256))
    return max(timeout_ms, 1), max(memory_mb, 16)


class _Child:
    """One sandboxed process and its pipes."""

    def __init__(self, timeout_ms: int, memory_mb: int) -> None:
        self.timeout_ms, self.memory_mb = timeout_ms, memory_mb
        cpu_seconds = max(1, math.ceil(timeout_ms / 1000))
        try:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and script, no shell)
                [sys.executable, "-I", str(CHILD), str(memory_mb), str(cpu_seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={"LANG": "C.UTF-8"},
                cwd="/",
                close_fds=True,
            )
        except OSError as exc:
            raise SandboxFailure("crashed", f"the evaluation process could not start ({exc.strerror})")
        self.baseline_kb: int | None = None
        self.alive = True
        self.workdir = ""  # the child's scratch folder (compiled plans), removed here if the child is killed
        self.rss_limit_kb: int | None = None  # its resident size when ready plus the memory budget
        try:  # starting (importing regopy) is not the first pack's time
            deadline = time.monotonic() + STARTUP_SECONDS
            ready = self._read(struct.unpack(">I", self._read(4, deadline))[0], deadline)
        except SandboxFailure:
            self.kill()
            raise SandboxFailure("crashed", "the evaluation process did not start")
        try:
            hello = json.loads(ready)
        except ValueError:
            hello = {}
        if not isinstance(hello, dict) or hello.get("ready") is not True:
            self.kill()
            raise SandboxFailure("crashed", "the evaluation process did not start")
        self.workdir = str(hello.get("workdir") or "")
        if isinstance(hello.get("rss_kb"), int):
            self.rss_limit_kb = hello["rss_kb"] + memory_mb * 1024
        _children.add(self)

    def request(self, header: dict, payload: bytes) -> list[dict | SandboxFailure]:
        """Send one request for ``header["packs"]`` and collect an answer per pack, each within the time
        budget counted from the previous answer. The first pack over budget gets its ``SandboxFailure``
        and ends the list (this child is then dead); the caller runs the rest on another child."""
        body = json.dumps(header, separators=(",", ":")).encode("utf-8")
        data = struct.pack(">I", len(body)) + body + struct.pack(">I", len(payload)) + payload
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return [SandboxFailure("stale", "the evaluation process had stopped before the request")]
        answers: list[dict | SandboxFailure] = []
        rss = None
        for _ in header["packs"]:
            deadline = time.monotonic() + self.timeout_ms / 1000
            try:
                head = self._read(4, deadline)
                answer = json.loads(self._read(struct.unpack(">I", head)[0], deadline))
            except SandboxFailure as exc:
                answers.append(exc)
                return answers
            except (RecursionError, ValueError):  # not what a child writes: do not trust this one further
                self.kill()
                answers.append(SandboxFailure("crashed", "the evaluation process gave an unreadable answer"))
                return answers
            if answer.get("error") == "memory":
                self.kill()
                answers.append(SandboxFailure("memory", self._memory_message()))
                return answers
            if answer.get("error") == "too_large":
                answers.append(SandboxFailure("too_large", f"its answer is larger than {answer['limit'] // 1024} KiB"))
                continue
            answers.append(answer)
            rss = answer.get("rss_kb")
            if isinstance(rss, int) and self.baseline_kb is None:
                self.baseline_kb = rss
        if isinstance(rss, int) and self.baseline_kb is not None and rss - self.baseline_kb > self.memory_mb * 512:
            self.retire()  # a large but permitted evaluation: do not keep its pages
        return answers

    def _memory_message(self) -> str:
        return f"it needed more than its memory budget of {self.memory_mb} MB"

    def _read(self, size: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        poller = select.poll()  # not select.select: a busy process may hold descriptors past FD_SETSIZE
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        chunks, left = [], size
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise SandboxFailure("time", f"it ran longer than its time budget of {self.timeout_ms} ms")
            if not poller.poll(max(1, int(min(remaining, WATCH_SECONDS) * 1000))):
                self._watch_memory()
                continue
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise self._death()
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _watch_memory(self) -> None:
        """Kill a child whose resident size passed its budget, whatever its address-space limit let through
        (an allocator may hand out pages from a region it reserved before the limit was set)."""
        if self.rss_limit_kb is None:
            return
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                rss_kb = int(f.read().split()[1]) * PAGE_KB
        except (OSError, ValueError, IndexError):
            return  # it is ending: reading its output says how
        if rss_kb > self.rss_limit_kb:
            self.kill()
            raise SandboxFailure("memory", self._memory_message())

    def _death(self) -> SandboxFailure:
        """What the end of the child's output means: its exit status, read after it ended."""
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.kill()  # closes the pipes (and ends a child that closed its output but lives on)
        code = self.proc.returncode
        if code in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS, 3):
            # rego-cpp aborts when an allocation fails past RLIMIT_AS (std::bad_alloc is not caught)
            return SandboxFailure("memory", self._memory_message())
        if code == -signal.SIGXCPU:
            return SandboxFailure("time", f"it ran longer than its time budget of {self.timeout_ms} ms")
        return SandboxFailure("crashed", f"the evaluation process stopped (exit status {code})")

    def retire(self) -> None:
        """Close the pipe (the child exits when it reads end of file) and forget the child."""
        self.alive = False
        _children.discard(self)
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.proc.stdout.close()

    def kill(self) -> None:
        self.alive = False
        _children.discard(self)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.workdir.startswith(tempfile.gettempdir() + os.sep + "assay-rego-"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with suppress(OSError):
                pipe.close()


class _Pool:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.idle: list[_Child] = []
        self.started = 0  # children alive, idle or checked out
        self.cond = threading.Condition()

    @contextmanager
    def child(self, timeout_ms: int, memory_mb: int, size: int):
        with self.cond:
            while True:
                while self.idle:
                    candidate = self.idle.pop()
                    if (
                        candidate.alive
                        and candidate.proc.poll() is None
                        and (candidate.timeout_ms, candidate.memory_mb) == (timeout_ms, memory_mb)
                    ):
                        break
                    candidate.kill()
                    self.started -= 1
                else:
                    candidate = None
                if candidate is not None:
                    break
                if self.started < size:
                    self.started += 1
                    break
                self.cond.wait()
        if candidate is None:
            try:
                candidate = _Child(timeout_ms, memory_mb)
            except BaseException:
                with self.cond:
                    self.started -= 1
                    self.cond.notify()
                raise
        try:
            yield candidate
        finally:
            with self.cond:
                if candidate.alive:
                    self.idle.append(candidate)
                else:
                    self.started -= 1
                self.cond.notify()

    def close(self) -> None:
        with self.cond:
            for child in self.idle:
                child.retire()
                self.started -= 1
            self.idle = []


_pool: _Pool | None = None
_pool_lock = threading.Lock()
_children: weakref.WeakSet[_Child] = weakref.WeakSet()  # every child this process started and has not ended


def _reset_after_fork() -> None:
    """A forked process must not share its parent's children (their pipes would interleave), nor
    keep their pipes open (a child its parent retires would never read end of file)."""
    global _pool, _pool_lock
    for inherited in list(_children):
        inherited.alive = False
        inherited.proc.returncode = 0  # not ours to wait for
        for pipe in (inherited.proc.stdin, inherited.proc.stdout):
            with suppress(OSError, ValueError):
                pipe.close()
    _children.clear()
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _the_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool()
        return _pool


def shutdown() -> None:
    """Retire every idle child of this process (tests, and a process that changes its limits)."""
    with _pool_lock:
        pool = _pool
    if pool is not None:
        pool.close()


def run(op: str, packs: list[dict], *, document: str = "") -> list[dict | SandboxFailure]:
    """Ask a sandboxed child to "check" (compile and check the built-ins of) or "evaluate" (also query
    on ``document``, a JSON text) each of ``packs`` (``{"source", "sha256", "package"}``). Returns, per
    pack in order, the child's answer or the ``SandboxFailure`` that stopped it (out of time or
    memory, or the child died); the packs after a failure run on a fresh child."""
    timeout_ms, memory_mb = limits()
    size = max(1, int(getattr(settings, "ASSAY_POLICY_SANDBOXES", 2)))
    payload = document.encode("utf-8")
    answers: list[dict | SandboxFailure] = []
    stale = 0
    while len(answers) < len(packs):
        header = {"op": op, "packs": packs[len(answers) :]}
        try:
            with _the_pool().child(timeout_ms, memory_mb, size) as child:
                got = child.request(header, payload)
        except SandboxFailure as exc:  # no child could be started: every pack left fails closed
            answers.extend([exc] * len(header["packs"]))
            break
        if got and isinstance(got[0], SandboxFailure) and got[0].reason == "stale" and stale < 2:
            stale += 1  # an idle child had died (nothing ran): ask another
            continue
        answers.extend(got)
    return answers
