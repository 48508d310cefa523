#!/usr/bin/env python3
"""Keep programs running: restart each one that exits, with backoff, forever, until told to stop.

    supervise.py --run NAME:LOG:COMMAND [--run ...]

Each ``--run`` names a program, the file its output is appended to (``-`` for this terminal) and
its command line (split like a shell would, no shell involved). Every program runs in a process
group of its own, so a stop reaches its children too. When a program exits, for any reason, what
is left of its group is killed (a web server's workers would otherwise keep its port) and it is
started again after a delay that doubles with each quick failure (0.5 s, 1 s, 2 s ... at most
``--max-delay``) and starts over at 0.5 s once a run has lasted ``--stable`` seconds; each restart
is logged to this terminal and to the program's log. Output files are only ever appended to.

SIGINT, SIGTERM or SIGHUP stops everything: SIGTERM to each program's group, SIGKILL to what is
left after ``--stop-timeout`` seconds, then the supervisor exits. Should the supervisor itself be
killed, its programs get SIGTERM from the kernel (Linux's parent-death signal), so nothing is left
running either way. Standard library only: it runs before, and independently of, the application.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Program:
    name: str
    log: str | None
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    restarts: int = 0
    next_start: float = 0.0
    _out: object = field(default=None, repr=False)

    def say(self, message: str) -> None:
        line = f"==> [{_stamp()}] {self.name}: {message}"
        print(line, file=sys.stderr, flush=True)
        if self.log:
            with open(self.log, "a") as out:
                out.write(line + "\n")

    def start(self) -> None:
        if self.log:
            os.makedirs(os.path.dirname(os.path.abspath(self.log)), exist_ok=True)
            self._out = open(self.log, "ab")  # noqa: SIM115 (kept open while the program runs)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT if self._out else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started = time.monotonic()

    def reaped(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self.proc = None

    def signal_group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


def parse_run(spec: str) -> Program:
    try:
        name, log, command = spec.split(":", 2)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--run wants NAME:LOG:COMMAND, not {spec!r}") from None
    argv = shlex.split(command)
    if not name or not argv:
        raise argparse.ArgumentTypeError(f"--run wants NAME:LOG:COMMAND, not {spec!r}")
    return Program(name=name, log=None if log == "-" else log, argv=argv)


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def supervise(
    programs: list[Program], *, min_delay: float, max_delay: float, stable: float, stop_timeout: float
) -> int:
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)

    for program in programs:
        program.start()
        program.say(f"started (pid {program.proc.pid}{', log ' + program.log if program.log else ''})")
    while not stopping:
        now = time.monotonic()
        for program in programs:
            if program.proc is not None:
                code = program.proc.poll()
                if code is None:
                    continue
                ran = now - program.started
                program.signal_group(signal.SIGKILL)  # children it left (a server's workers still holding the port)
                program.reaped()
                program.failures = 0 if ran >= stable else program.failures + 1
                delay = min(max_delay, min_delay * 2 ** max(0, program.failures - 1))
                program.next_start = now + delay
                program.say(f"{describe_exit(code)} after {ran:.1f} s; restarting in {delay:g} s")
            elif now >= program.next_start:
                program.start()
                program.restarts += 1
                program.say(f"restarted (pid {program.proc.pid}, restart #{program.restarts})")
        time.sleep(0.1)

    for program in programs:
        program.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    for program in programs:
        if program.proc is None:
            continue
        try:
            program.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            program.say(f"did not stop within {stop_timeout:g} s; killing it")
        program.signal_group(signal.SIGKILL)  # whatever its children left behind, too
        with contextlib.suppress(subprocess.TimeoutExpired):
            program.proc.wait(timeout=5)
        program.say("stopped")
        program.reaped()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", type=parse_run, required=True, metavar="NAME:LOG:COMMAND")
    parser.add_argument("--min-delay", type=float, default=0.5, help="first restart delay, seconds (default 0.5)")
    parser.add_argument("--max-delay", type=float, default=30.0, help="longest restart delay, seconds (default 30)")
    parser.add_argument("--stable", type=float, default=60.0, help="a run this long resets the backoff (default 60)")
    parser.add_argument("--stop-timeout", type=float, default=15.0, help="seconds to stop before SIGKILL (default 15)")
    args = parser.parse_args(argv)
    return supervise(
        args.run, min_delay=args.min_delay, max_delay=args.max_delay, stable=args.stable, stop_timeout=args.stop_timeout
    )


if __name__ == "__main__":
    sys.exit(main())
