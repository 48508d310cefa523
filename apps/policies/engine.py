"""Evaluate one pack's Rego module on an input document: in a sandboxed regopy process, or on an OPA server.

A pack is one module in package ``assay.<name>``; the engine reads the whole package document
(``data.assay.<name>``) and hands back what the decision needs from it: ``applies``,
``violations``, ``missing_evidence``, ``required_approvals`` and ``rules``
(``apps/policies/packs/README.md`` gives their shapes). Nothing here touches the database.

A pack is code someone uploaded, so it never runs in this process: ``sandbox.py`` keeps a few
child processes with an empty environment that compile each (module sha256, package) once into
a bundle (the query compiled; 3-4 times faster to query than a plain module,
``benchmarks/policy_bench.py``), refuse a module that calls a built-in outside
``sandbox_child.ALLOWED_BUILTINS``, and evaluate within a time and memory budget (``ForbiddenBuiltin``,
``BudgetExceeded``; ``docs/policy-sandbox.md``).
With ``ASSAY_OPA_URL`` set the same document is POSTed to OPA's Data API instead; the module is
checked in the sandbox (it compiles, its built-ins are allowed) and PUT to OPA's Policy API first
(once per sha256).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from . import sandbox

SEVERITIES = ("blocking", "warning")
VIOLATION_KEYS = ("rule", "message", "clause", "severity")
MISSING_KEYS = ("kind", "subject", "reason", "rule")
APPROVAL_KEYS = ("role", "count", "reason")


class RegoSyntaxError(Exception):
    """A module that does not compile; ``line`` is 1-based (None when rego-cpp gave no position)."""

    def __init__(self, message: str, *, line: int | None = None, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.errors = errors or []


class EvaluationError(Exception):
    """A module that compiled but failed (or gave a malformed document) on this input."""


class ForbiddenBuiltin(EvaluationError):
    """A module that calls built-ins outside ``sandbox_child.ALLOWED_BUILTINS``; ``calls`` is ``[{"name", "line"}]``
    (``line`` 1-based, or None). Such a module is never queried."""

    def __init__(self, calls: list[dict]) -> None:
        self.calls = calls
        named = (
            ", ".join(f"'{c['name']}'" + (f" (line {c['line']})" if c.get("line") else "") for c in calls)
            or "an unknown built-in"
        )
        super().__init__(f"it calls the built-in {named}, which policy packs may not use")


class BudgetExceeded(EvaluationError):
    """An evaluation stopped for running past its time or memory budget; ``reason`` is "time",
    "memory" or "too_large" and the message names the limit."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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


# --- sandboxed evaluation ----------------------------------------------------------------------


def _answer(answer: dict | sandbox.SandboxFailure, source: str) -> Any:
    """The package document in a sandbox answer, or the error it reports raised as ours."""
    if isinstance(answer, sandbox.SandboxFailure):
        if answer.reason in ("crashed", "stale"):
            raise EvaluationError(f"evaluation failed: {answer.message}")
        raise BudgetExceeded(answer.reason, answer.message)
    error = answer.get("error")
    if error == "syntax":
        raise _syntax_error(Exception(answer.get("text", "")), source)
    if error == "forbidden":
        raise ForbiddenBuiltin(answer.get("builtins") or [])
    if error is not None:
        raise EvaluationError(f"evaluation failed: {answer.get('message', error)}")
    return answer.get("result")


def _query_local(source: str, sha256: str, package: str, document: dict) -> Any:
    """The package document ``data.<package>`` for ``document`` (None when undefined), evaluated in the sandbox."""
    pack = {"source": source, "sha256": sha256, "package": package}
    return _answer(sandbox.run("evaluate", [pack], document=json.dumps(document))[0], source)


def compile_check(source: str, sha256: str, package: str) -> None:
    """Raise ``RegoSyntaxError`` unless ``source`` compiles, or ``ForbiddenBuiltin`` if it calls a
    built-in outside the allow-list (in the sandbox, whatever the OPA setting)."""
    _answer(sandbox.run("check", [{"source": source, "sha256": sha256, "package": package}])[0], source)


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


def _push_module(base: str, source: str, sha256: str, package: str, timeout: float) -> None:
    compile_check(source, sha256, package)  # never hand OPA a module that calls opa.runtime or http.send
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
            _push_module(base, source, sha256, package, timeout)
        status, text = _http("POST", path, body, "application/json", timeout)
        result = _opa_result(status, text)
        if result is None and pushed:
            _push_module(base, source, sha256, package, timeout)
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
    """One pack on one input. Raises ``RegoSyntaxError`` or ``EvaluationError`` (``ForbiddenBuiltin``,
    ``BudgetExceeded``); never anything else from the engine (callers turn both into a blocking violation)."""
    result = evaluate_each(packs=[(source, sha256, package)], document=document)[0]
    if isinstance(result, Exception):
        raise result
    return result


def evaluate_each(
    *, packs: list[tuple[str, str, str]], document: dict
) -> list[PackResult | RegoSyntaxError | EvaluationError]:
    """Each (source, sha256, package) on one input, in order: its ``PackResult`` or the error that
    stopped it. In the sandbox the input is sent once and the packs answered one after the other,
    each within its own budget."""
    opa_url = getattr(settings, "ASSAY_OPA_URL", "")
    results: list[PackResult | RegoSyntaxError | EvaluationError] = []
    if opa_url:
        for source, sha256, package in packs:
            try:
                result = _query_opa(opa_url, source, sha256, package, document)
                results.append(read_document(result, require_violations=True))
            except (RegoSyntaxError, EvaluationError) as exc:
                results.append(exc)
        return results
    requests = [{"source": source, "sha256": sha256, "package": package} for source, sha256, package in packs]
    answers = sandbox.run("evaluate", requests, document=json.dumps(document)) if packs else []
    for (source, _sha256, _package), answer in zip(packs, answers, strict=True):
        try:
            results.append(read_document(_answer(answer, source), require_violations=True))
        except (RegoSyntaxError, EvaluationError) as exc:
            results.append(exc)
    return results
