"""A small HTTP/1.1 client for the router: kept-alive connections to one serving process on 127.0.0.1.

Each connection is an ``asyncio.Protocol`` that parses the answer as its bytes arrive and hands it to the one
request waiting on it: no stream reader, no task per request, so the router's hop costs little. The router
talks only to its own serving processes, which answer with a Content-Length (an answer without one runs to
the end of the connection). A kept-alive connection the server has closed in the meantime fails at once; the
request is then sent again once on a fresh connection (inference has no side effects). Anything else that
fails is ``UpstreamFailed``.
"""

from __future__ import annotations

import asyncio


class UpstreamFailed(Exception):
    """The serving process did not answer (refused, reset, timed out, or answered something unreadable)."""


class _Connection(asyncio.Protocol):
    """One connection; at most one request in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.sent = False  # whether the current request reached the server's side at all (bytes came back)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.sent = True
        if self.waiter is not None and not self.waiter.done():
            self._answer(eof=False)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done() and not self._answer(eof=True):
            self.waiter.set_exception(ConnectionResetError("the server closed the connection"))

    def _answer(self, *, eof: bool) -> bool:
        """Resolve the waiter once a whole answer is buffered; True when it was resolved."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        try:
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            version, status = lines[0].split(" ", 2)[:2]
            length, keep = None, version == "HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    keep = value.strip().lower() != "close"
            status_code = int(status)
        except ValueError as exc:
            self.waiter.set_exception(UpstreamFailed(f"not an HTTP answer: {exc}"))
            return True
        start = end + 4
        if length is None:  # the body runs to the end of the connection
            if not eof:
                return False
            length, keep = len(self.buffer) - start, False
        if len(self.buffer) < start + length:
            return False
        body = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        self.waiter.set_result((status_code, body, keep))
        return True

    async def exchange(self, request: bytes, timeout: float) -> tuple[int, bytes, bool]:
        loop = asyncio.get_running_loop()
        self.waiter, self.sent = loop.create_future(), False
        self.transport.write(request)
        timer = loop.call_later(timeout, self._expire)
        try:
            return await self.waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _expire(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TimeoutError())
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Upstream:
    """Connections to one serving process; at most ``max_idle`` are kept for reuse."""

    def __init__(self, host: str, port: int, *, max_idle: int = 32) -> None:
        self.host, self.port, self.max_idle = host, port, max_idle
        self.idle: list[_Connection] = []

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(loop.create_connection(_Connection, self.host, self.port), timeout)
        except (OSError, TimeoutError) as exc:
            raise UpstreamFailed(f"cannot connect to 127.0.0.1:{self.port}: {exc or type(exc).__name__}") from None
        return connection

    async def request(self, method: str, path: str, body: bytes = b"", *, timeout: float = 30.0) -> tuple[int, bytes]:
        """(status, body) of one request; ``UpstreamFailed`` when the process does not answer in ``timeout`` s."""
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for attempt in range(2):
            connection = None
            while self.idle and attempt == 0:
                candidate = self.idle.pop()
                if not candidate.closed:
                    connection = candidate
                    break
            reused = connection is not None
            if connection is None:
                connection = await self._connect(timeout)
            try:
                status, answer, keep = await connection.exchange(request, timeout)
            except TimeoutError:
                connection.close()
                raise UpstreamFailed(f"127.0.0.1:{self.port} did not answer within {timeout:g} s") from None
            except (OSError, UpstreamFailed) as exc:
                connection.close()
                if reused and not connection.sent:
                    continue  # the server had closed this kept-alive connection: once more on a new one
                raise UpstreamFailed(f"127.0.0.1:{self.port} did not answer: {exc or type(exc).__name__}") from None
            if keep and not connection.closed and len(self.idle) < self.max_idle:
                self.idle.append(connection)
            else:
                connection.close()
            return status, answer
        raise UpstreamFailed(f"127.0.0.1:{self.port} closed the connection")

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
