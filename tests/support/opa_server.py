"""A local server speaking OPA's REST API (Policy API and Data API), for tests of the OPA path.

No OPA binary can be installed on these machines (the Go module proxy is not reachable, Debian
does not package OPA, and the PyPI wheel that wraps OPA's Go engine needs Python 3.14), so this
is the most faithful stand-in available: it implements the two endpoints Assay calls exactly as
OPA documents them, and evaluates the modules with a real Rego engine (rego-cpp, through regopy):

- ``PUT /v1/policies/{id}`` with the module's text: 200 ``{}``; a module that does not compile is
  400 ``{"code": "invalid_parameter", "message": ..., "errors": [...]}``;
- ``POST /v1/data/{path}`` with ``{"input": ...}``: 200 ``{"result": <document>}``, or ``{}`` when
  the path is undefined (OPA's answer for a package no module declares).

``restart()`` forgets every module, as an OPA process that restarted without bundles would.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import regopy


class OpaLikeServer:
    def __init__(self) -> None:
        self.modules: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> OpaLikeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def restart(self) -> None:
        with self._lock:
            self.modules.clear()

    def _interpreter(self, modules: dict[str, str]) -> regopy.Interpreter:
        interpreter = regopy.Interpreter()
        interpreter.log_level = regopy.LogLevel.NONE
        for policy_id, source in modules.items():
            interpreter.add_module(f"{policy_id}.rego", source)
        return interpreter

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_PUT(self) -> None:
                server.requests.append(("PUT", self.path))
                if not self.path.startswith("/v1/policies/"):
                    return self._answer(404, {"code": "resource_not_found", "message": self.path})
                policy_id, source = self.path.removeprefix("/v1/policies/"), self._body().decode()
                try:
                    interpreter = self._check(policy_id, source)
                except regopy.RegoError as exc:
                    return self._answer(
                        400,
                        {
                            "code": "invalid_parameter",
                            "message": "error(s) occurred while compiling module(s)",
                            "errors": [{"code": "rego_parse_error", "message": str(exc)[:500]}],
                        },
                    )
                del interpreter
                with server._lock:
                    server.modules[policy_id] = source
                return self._answer(200, {})

            def _check(self, policy_id: str, source: str) -> regopy.Interpreter:
                interpreter = server._interpreter({policy_id: source})
                interpreter.query("x = true")  # compiles the module
                return interpreter

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path))
                if not self.path.startswith("/v1/data/"):
                    return self._answer(404, {"code": "resource_not_found", "message": self.path})
                path = self.path.removeprefix("/v1/data/").strip("/").replace("/", ".")
                payload = json.loads(self._body() or b"{}")
                with server._lock:
                    modules = dict(server.modules)
                interpreter = server._interpreter(modules)
                interpreter.set_input_term(json.dumps(payload.get("input")))
                output = interpreter.query(f"x = data.{path}")
                if not output.results or not output.results[0].bindings:
                    return self._answer(200, {})
                return self._answer(200, {"result": output.results[0].bindings.get("x")})

        return Handler
