"""Evaluate one pack's Rego module on an input document: in-process with regopy, or on an OPA server.

A pack is one module in package ``assay.<name>``; the engine reads the whole package document
(``data.assay.<name>``) and hands back what the decision needs from it: ``applies``,
``violations``, ``missing_evidence``, ``required_approvals`` and ``rules``
(``apps/policies/packs/README.md`` gives their shapes). Nothing here touches the database.

Each (module sha256, package) is compiled once per thread into an interpreter and a bundle
(the query compiled), then only queried: a rego-cpp interpreter is not safe to share between
threads, and a bundle query is 3-4 times faster than a plain one (``benchmarks/policy_bench.py``).
With ``ASSAY_OPA_URL`` set the same document is POSTed to OPA's Data API instead; the module is
PUT to OPA's Policy API first (once per sha256).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import regopy
from django.conf import settings

SEVERITIES = ("blocking", "warning")
VIOLATION_KEYS = ("rule", "message", "clause", "severity")
MISSING_KEYS = ("kind", "subject", "reason", "rule")
APPROVAL_KEYS = ("role", "count", "reason")

_silenced = False


def _silence() -> None:
    """rego-cpp prints compile errors to stderr besides raising them: the errors are ours to report."""
    global _silenced
    if not _silenced:
        regopy.set_default_log_level("None")
        _silenced = True


class RegoSyntaxError(Exception):
    """A module that does not compile; ``line`` is 1-based (None when rego-cpp gave no position)."""

    def __init__(self, message: str, *, line: int | None = None, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.errors = errors or []


class EvaluationError(Exception):
    """A module that compiled but failed (or gave a malformed document) on this input."""


@dataclass
class PackResult:
    """What one pack says about one input."""

    applies: bool = False
    violations: list[dict] = field(default_factory=list)
    missing_evidence: list[dict] = field(default_factory=list)
    required_approvals: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)


# --- errors ------------------------------------------------------------------------------------

_ERROR_HEAD = re.compile(r"\(error \d+:([^|\s]*)\|(\d+)\|(\d+)")
_ERROR_MSG = re.compile(r"\(errormsg (\d+):")


def _parse_errors(text: str, source: str) -> list[dict]:
    """rego-cpp's error sequence (``(error 8:file|byte_offset|length (errormsg N:text) ...)``) as
    ``[{"line", "column", "message"}]``; the offset is in bytes of the UTF-8 source."""
    errors = []
    encoded = source.encode("utf-8")
    for head in _ERROR_HEAD.finditer(text):
        offset = int(head.group(2))
        before = encoded[:offset].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        message = "syntax error"
        msg = _ERROR_MSG.search(text, head.end())
        if msg is not None:
            start = msg.end()
            message = text[start : start + int(msg.group(1))]
        errors.append({"line": line, "column": column, "message": message})
    return errors


def _syntax_error(exc: Exception, source: str) -> RegoSyntaxError:
    errors = _parse_errors(str(exc), source)
    if not errors:
        return RegoSyntaxError(f"The module does not compile: {str(exc).strip()[:300]}")
    first = errors[0]
    return RegoSyntaxError(
        f"Line {first['line']}, column {first['column']}: {first['message']}", line=first["line"], errors=errors
    )


# --- in-process evaluation ---------------------------------------------------------------------

_local = threading.local()
_CACHE_SIZE = 64


def _compiled(source: str, sha256: str, package: str) -> tuple[regopy.Interpreter, regopy.Bundle]:
    """This thread's interpreter for ``source`` and its bundle for ``x = data.<package>`` (built on first use).

    A bundle is the query compiled once: querying it is 3-4 times faster than ``Interpreter.query``,
    which compiles the module again on every call (``benchmarks/policy_bench.py``).
    """
    _silence()
    cache: dict = getattr(_local, "interpreters", None)
    if cache is None:
        cache = _local.interpreters = {}
    key = (sha256, package)
    compiled = cache.get(key)
    if compiled is None:
        interpreter = regopy.Interpreter()
        interpreter.log_level = regopy.LogLevel.NONE
        try:
            interpreter.add_module(f"{sha256[:12]}.rego", source)
            bundle = interpreter.build(f"x = data.{package}", [])
        except regopy.RegoError as exc:
            raise _syntax_error(exc, source)
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)))
        compiled = cache[key] = (interpreter, bundle)
    return compiled


def _query_local(source: str, sha256: str, package: str, document: dict) -> Any:
    interpreter, bundle = _compiled(source, sha256, package)
    try:
        interpreter.set_input_term(json.dumps(document))
        output = interpreter.query_bundle(bundle)
    except regopy.RegoError as exc:
        raise EvaluationError(f"evaluation failed: {str(exc).strip()[:300]}")
    except ValueError as exc:  # a runtime error whose output is not JSON
        raise EvaluationError(f"evaluation failed: {exc}")
    if not output.ok():
        raise EvaluationError(f"evaluation failed: {str(output).strip()[:300]}")
    if not output.results or not output.results[0].bindings:
        return None  # undefined: the package is not declared by this module
    return output.results[0].bindings.get("x")


def compile_check(source: str, sha256: str, package: str) -> None:
    """Raise ``RegoSyntaxError`` unless ``source`` compiles (in-process, whatever the OPA setting)."""
    _compiled(source, sha256, package)


# --- OPA server --------------------------------------------------------------------------------

_pushed: set[tuple[str, str]] = set()
_pushed_lock = threading.Lock()


def _http(method: str, url: str, body: bytes, content_type: str, timeout: float) -> tuple[int, str]:
    if not url.startswith(("http://", "https://")):
        raise EvaluationError("ASSAY_OPA_URL must be an http:// or https:// URL")
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (checked above)
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")


def _push_module(base: str, source: str, sha256: str, timeout: float) -> None:
    status, text = _http("PUT", f"{base}/v1/policies/assay-{sha256}", source.encode(), "text/plain", timeout)
    if status >= 400:
        raise EvaluationError(f"OPA refused the module ({status}): {text[:300]}")
    with _pushed_lock:
        _pushed.add((base, sha256))


def _query_opa(base_url: str, source: str, sha256: str, package: str, document: dict) -> Any:
    """PUT the module to OPA's Policy API (once per sha256 and server) and POST the input to its Data API.

    An undefined answer for a module pushed earlier means the server lost it (a restart without
    bundles): the module is pushed again and the query repeated, once.
    """
    base = base_url.rstrip("/")
    timeout = float(getattr(settings, "ASSAY_OPA_TIMEOUT_SECONDS", 5))
    body = json.dumps({"input": document}).encode()
    path = f"{base}/v1/data/{package.replace('.', '/')}"
    try:
        with _pushed_lock:
            pushed = (base, sha256) in _pushed
        if not pushed:
            _push_module(base, source, sha256, timeout)
        status, text = _http("POST", path, body, "application/json", timeout)
        result = _opa_result(status, text)
        if result is None and pushed:
            _push_module(base, source, sha256, timeout)
            result = _opa_result(*_http("POST", path, body, "application/json", timeout))
    except (urllib.error.URLError, OSError) as exc:
        raise EvaluationError(f"OPA server unreachable at {base}: {exc}")
    return result


def _opa_result(status: int, text: str) -> Any:
    """The ``result`` of a Data API answer (None when the path is undefined)."""
    if status >= 400:
        raise EvaluationError(f"OPA answered {status}: {text[:300]}")
    try:
        return json.loads(text).get("result")
    except (ValueError, AttributeError):
        raise EvaluationError(f"OPA answered with something that is not a JSON object: {text[:200]}")


# --- the document ------------------------------------------------------------------------------


def _objects(value: Any, keys: tuple[str, ...], what: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvaluationError(f"'{what}' must be a set or array of objects, not {type(value).__name__}")
    items = []
    for item in value:
        if not isinstance(item, dict) or any(k not in item for k in keys):
            raise EvaluationError(
                f"every item of '{what}' must be an object with {', '.join(keys)}; got {item!r}"[:400]
            )
        items.append(item)
    return items


def read_document(document: Any, *, require_violations: bool = False) -> PackResult:
    """Check a package document's shape and turn it into a ``PackResult`` (``EvaluationError`` if malformed)."""
    if document is None:
        raise EvaluationError("the module does not define the pack's package")
    if not isinstance(document, dict):
        raise EvaluationError("the package document is not an object")
    if require_violations and "violations" not in document:
        raise EvaluationError("the package defines no 'violations' rule")
    violations = _objects(document.get("violations"), VIOLATION_KEYS, "violations")
    for v in violations:
        if v["severity"] not in SEVERITIES:
            raise EvaluationError(f"violation severity must be 'blocking' or 'warning', not {v['severity']!r}")
        for key in VIOLATION_KEYS:
            if not isinstance(v[key], str) or not v[key]:
                raise EvaluationError(f"violation '{key}' must be a non-empty string")
    approvals = _objects(document.get("required_approvals"), APPROVAL_KEYS, "required_approvals")
    for a in approvals:
        if not isinstance(a["count"], int) or a["count"] < 0:
            raise EvaluationError("required approval 'count' must be a non-negative integer")
    applies = document.get("applies", False)
    if not isinstance(applies, bool):
        raise EvaluationError("'applies' must be a boolean")
    rules = _objects(document.get("rules"), ("rule", "clause", "title"), "rules")
    return PackResult(
        applies=applies,
        violations=violations,
        missing_evidence=_objects(document.get("missing_evidence"), MISSING_KEYS, "missing_evidence"),
        required_approvals=approvals,
        rules=rules,
    )


def evaluate(*, source: str, sha256: str, package: str, document: dict) -> PackResult:
    """One pack on one input. Raises ``RegoSyntaxError`` or ``EvaluationError``; never anything else
    from the engine (callers turn both into a blocking violation)."""
    opa_url = getattr(settings, "ASSAY_OPA_URL", "")
    if opa_url:
        result = _query_opa(opa_url, source, sha256, package, document)
    else:
        result = _query_local(source, sha256, package, document)
    return read_document(result, require_violations=True)
