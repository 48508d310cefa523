"""A small HTTP/1.1 client for the router: kept-alive connections to one serving process on 127.0.0.1.

The router talks only to its own serving processes, which answer with a Content-Length, so this reads exactly
that (or to the end of the connection without one). A kept-alive connection the server has closed in the
meantime fails at once; the request is then sent again once on a fresh connection (inference has no side
effects). Anything else that fails is ``UpstreamFailed``.
"""

from __future__ import annotations

import asyncio


class UpstreamFailed(Exception):
    """The serving process did not answer (refused, reset, timed out, or answered something unreadable)."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise UpstreamFailed(f"not an HTTP answer: {lines[0][:80]!r}")
    status = int(parts[1])
    length, keep = None, parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection":
            keep = value.strip().lower() != "close"
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep


def _expire(expired: list, writer: asyncio.StreamWriter) -> None:
    expired.append(True)
    writer.transport.abort()


class Upstream:
    """Connections to one serving process; at most ``max_idle`` are kept for reuse."""

    def __init__(self, host: str, port: int, *, max_idle: int = 32) -> None:
        self.host, self.port, self.max_idle = host, port, max_idle
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes = b"", *, timeout: float = 30.0) -> tuple[int, bytes]:
        """(status, body) of one request; ``UpstreamFailed`` when the process does not answer in ``timeout`` s.

        The timeout is a timer that aborts the connection (no task per request, as ``wait_for`` would make).
        """
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            reused = bool(self.idle) and attempt == 0
            try:
                if reused:
                    reader, writer = self.idle.pop()
                else:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
            except (OSError, TimeoutError) as exc:
                raise UpstreamFailed(f"cannot connect to 127.0.0.1:{self.port}: {exc or type(exc).__name__}") from None
            expired = []
            timer = loop.call_later(timeout, _expire, expired, writer)
            try:
                writer.write(head + body)
                status, answer, keep = await _read_answer(reader)
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                writer.close()
                if expired:
                    raise UpstreamFailed(f"127.0.0.1:{self.port} did not answer within {timeout:g} s") from None
                if reused:
                    continue  # the server closed a kept-alive connection: once more on a new one
                raise UpstreamFailed(f"127.0.0.1:{self.port} did not answer: {exc or type(exc).__name__}") from None
            finally:
                timer.cancel()
            if keep and len(self.idle) < self.max_idle:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, answer
        raise UpstreamFailed(f"127.0.0.1:{self.port} closed the connection")

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
