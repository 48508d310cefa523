"""The registration benchmark's load generator counts what the server answered, not what it was sent.

A benchmark's rate is only as honest as its count: an error answer, a dropped connection or a
chunked body must not pass for a registration. The server here is a real HTTP server on loopback.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# benchmarks/ is a folder of scripts, not a package: load the module by path, leaving sys.path alone.
_spec = importlib.util.spec_from_file_location(
    "loadgen", Path(__file__).resolve().parents[2] / "benchmarks" / "loadgen.py"
)
loadgen = importlib.util.module_from_spec(_spec)
sys.modules["loadgen"] = loadgen  # dataclasses look their module up by name
_spec.loader.exec_module(loadgen)


class _Handler(BaseHTTPRequestHandler):
    """Every third request is refused with 500, every fifth answer is chunked, the rest are 201."""

    protocol_version = "HTTP/1.1"
    seen = 0
    bodies: list[bytes] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).seen += 1
            n = self.seen
            self.bodies.append(body)
        if self.path == "/drop" and n % 2 == 0:
            self.close_connection = True  # no answer at all: the client sees the connection end
            return
        status, answer = (500, b'{"detail": "broken"}') if n % 3 == 0 else (201, b'{"ok": true}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if n % 5 == 0:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(answer), answer))
        else:
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.seen, _Handler.bodies = 0, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _load(path: str) -> loadgen.Load:
    return loadgen.assay_json_load(path=path, token="t", bucket="b", extra_fields={"format": "onnx"})


@pytest.mark.parametrize("keep_alive", [True, False])
def test_error_answers_are_counted_apart_and_not_in_the_rate(server, keep_alive):
    # given a server that refuses every third request
    # when the generator drives it with four clients
    step = loadgen.run_asyncio(
        server, _load("/register"), concurrency=4, duration_s=0.5, label="t", keep_alive=keep_alive
    )

    # then every answer is counted once, the refusals apart, with a sample of what they said
    assert step.requests == _Handler.seen > 0
    assert step.ok == step.codes[201] and step.not_ok == step.codes[500] == _Handler.seen // 3
    assert step.ok + step.not_ok == step.requests
    assert step.rate == pytest.approx(step.ok / step.duration_s, rel=0.01)
    assert step.samples and step.samples[0].startswith('500 {"detail": "broken"}')
    assert not step.socket_errors


def test_a_request_left_unanswered_is_a_socket_error_not_a_registration(server):
    # when the server drops every second request without answering
    step = loadgen.run_asyncio(server, _load("/drop"), concurrency=2, duration_s=0.5, label="t", keep_alive=True)

    # then those requests are socket errors, and only answered ones are counted
    assert step.socket_errors.get("read", 0) >= _Handler.seen // 2 - 2
    assert step.requests + step.socket_errors["read"] == _Handler.seen
    assert step.reconnects > 0


def test_every_request_carries_a_distinct_artifact(server):
    # when the generator registers through several clients
    loadgen.run_asyncio(server, _load("/register"), concurrency=3, duration_s=0.3, label="t")

    # then no two requests named the same artifact or digest
    assert len(_Handler.bodies) == len(set(_Handler.bodies)) > 3
