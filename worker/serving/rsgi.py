"""What the serving processes share: JSON answers over RSGI and one embedded Granian server per process.

Granian's embedded server runs the app on this process's asyncio loop (HTTP is parsed in Granian's Rust
threads), so a serving process is one process: its pid is the one the driver records, its counters are the
only counters, and there is no worker process to outlive it. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import orjson

JSON = [("content-type", "application/json")]
TEXT = [("content-type", "text/plain; version=0.0.4; charset=utf-8")]

log = logging.getLogger("assay.serving")


def dumps(doc: object) -> bytes:
    return orjson.dumps(doc)


def answer(proto, status: int, doc: object) -> None:
    proto.response_bytes(status, JSON, dumps(doc))


def error(proto, status: int, message: str) -> None:
    """The V2 error shape: ``{"error": "..."}``."""
    proto.response_bytes(status, JSON, dumps({"error": message}))


def content_length(scope) -> int | None:
    raw = scope.headers.get("content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


async def read_body(scope, proto, limit: int) -> bytes | None:
    """The request body, or None (having answered 413) when it is larger than ``limit`` bytes."""
    declared = content_length(scope)
    if declared is not None and declared > limit:
        error(proto, 413, f"the request body is {declared} bytes; the limit is {limit}")
        return None
    body = await proto()
    if len(body) > limit:
        error(proto, 413, f"the request body is {len(body)} bytes; the limit is {limit}")
        return None
    return body


def serve(app, host: str, port: int) -> None:
    """Serve ``app`` (an object with ``__rsgi__``) on ``host:port`` until SIGTERM or SIGINT, then exit the process.

    The loop is run by hand and the process leaves with ``os._exit``: the interpreter's own shutdown would
    cancel Granian's request tasks as if they were asyncio tasks, and tear down its Rust threads under them.
    """
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    code = 0
    try:
        loop.run_until_complete(server.serve())
    except Exception:
        log.exception("the server stopped on an error")
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
