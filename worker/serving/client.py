"""A synchronous HTTP client for the serving processes and the router (the driver, the tests, the demo).

``V2Client(url)`` keeps one connection open and sends requests one after another; ``infer`` builds the V2
request for a feature matrix (rows of numbers) and returns the decoded answer with its status::

    client = V2Client("http://127.0.0.1:18000")
    status, doc = client.infer("credit-scoring", [[0.1, 2.0, 3.5, 1.0]])
    doc["outputs"][0]["data"]   # the predictions
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit


def v2_request(rows: list[list[float]], *, datatype: str = "FP32", name: str = "input", request_id: str = "") -> dict:
    """The V2 infer body for a feature matrix (one input of shape [rows, features], data flat)."""
    width = len(rows[0]) if rows else 0
    doc = {
        "inputs": [
            {"name": name, "shape": [len(rows), width], "datatype": datatype, "data": [v for r in rows for v in r]}
        ]
    }
    if request_id:
        doc["id"] = request_id
    return doc


class V2Client:
    """One kept-alive connection to ``url`` (``http://127.0.0.1:PORT``); reconnects once if it was closed."""

    def __init__(self, url: str, *, timeout: float = 10.0, token: str = "") -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout, self.token = timeout, token
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
            except http.client.HTTPException as exc:  # an answer that is not HTTP: as good as none
                self.close()
                raise ConnectionError(f"{self.host}:{self.port} answered something that is not HTTP: {exc!r}") from None
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        status, data = self.request(method, path, body)
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, {"error": data[:200].decode(errors="replace")}

    def infer(
        self, model: str, rows: list[list[float]], *, datatype: str = "FP32", version: str = ""
    ) -> tuple[int, dict]:
        path = f"/v2/models/{model}/versions/{version}/infer" if version else f"/v2/models/{model}/infer"
        return self.json("POST", path, v2_request(rows, datatype=datatype))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> V2Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get(url: str, path: str, *, timeout: float = 2.0, token: str = "") -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body); raises ``OSError`` when nothing answers."""
    with V2Client(url, timeout=timeout, token=token) as client:
        return client.request("GET", path)
