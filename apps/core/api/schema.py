"""The error answers of every API operation, declared in one place (a drf-spectacular postprocessing hook).

Every refusal the API gives is ``application/problem+json`` (``apps.core.errors``). Rather than list
them on each view, ``declare_problem_responses`` adds them to the generated schema from what each
operation is:

- every operation: 406 (an ``Accept`` the API cannot answer) and 429 (throttled, with ``Retry-After``);
- authenticated: 401 (with ``WWW-Authenticate``) and 403 (a role or a token scope that does not allow it);
- a path with parameters: 404 (nothing there, or nothing the caller may see); a paginated list: 404 for a
  page that does not exist (``page=0`` or past the end);
- query parameters or a request body: 400 (``errors`` names each field);
- writes (POST, PUT, PATCH, DELETE): 400, 403 and 409 (a state that does not allow it, or a duplicate);
- a request body: 413 (too large) and 415 (a content type the operation does not take).

A status a view already declares keeps its description; its body becomes the problem document.
``tests/core/test_schema_fuzz.py`` sends generated requests to every operation and fails on any
answer the schema does not declare.
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document. Some problems add members of their own.",
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "detail": {"type": "string", "description": "What went wrong, for a person to read."},
        "code": {"type": "string", "description": "A stable machine-readable code, e.g. `validation_failed`."},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {"type": "string", "description": "The request's id, as in the X-Request-ID header."},
        "errors": {
            "type": "object",
            "description": "Per-field messages, for a request that fails validation.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

DESCRIPTIONS = {
    400: "Malformed request or invalid input; `errors` names each field.",
    401: "No valid credentials: send `Authorization: Bearer <token>`.",
    403: "The caller's roles or the token's scopes do not allow this.",
    404: "Nothing there, or nothing the caller may see; for a list, a page that does not exist.",
    406: "The `Accept` header names no type this operation answers with.",
    409: "The object's state does not allow this, or it would duplicate an existing one.",
    413: "The request body is larger than the server takes.",
    415: "The request body's content type is not one this operation takes.",
    429: "Too many requests: wait for `Retry-After` seconds.",
}

HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "schema": {"type": "string"},
            "required": True,
        }
    },
    429: {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}},
}

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def error_statuses(method: str, operation: dict, *, default_security: list | None = None) -> set[int]:
    """The error statuses an operation can answer, from its method, parameters, body and security."""
    statuses = {406, 429}
    security = operation.get("security", default_security)
    if security and {} not in security:
        statuses |= {401, 403}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters) or any(
        p.get("in") == "query" and p.get("name") == "page" for p in parameters
    ):
        statuses.add(404)
    if any(p.get("in") == "query" for p in parameters):
        statuses.add(400)
    if method in WRITE_METHODS:
        statuses |= {400, 403, 409}
    if operation.get("requestBody"):
        statuses |= {400, 413, 415}
    return statuses


def _as_problem(status: int, response: dict) -> dict:
    """A declared error response, its body moved to problem+json (a view's own schema is kept)."""
    content = response.get("content") or {}
    schema = (content.get(PROBLEM_JSON) or content.get("application/json") or {}).get("schema", PROBLEM_REF)
    description = response.get("description", "")
    if status in DESCRIPTIONS and (not description or description.startswith("Problem details")):
        description = DESCRIPTIONS[status]
    return {**response, "description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


def declare_problem_responses(result: dict, generator, request, public) -> dict:
    """Add the problem+json error responses each operation can answer (see the module docstring)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                if str(code).isdigit() and int(code) >= 400:
                    responses[code] = _as_problem(int(code), response)
            for status in sorted(error_statuses(method, operation, default_security=result.get("security"))):
                response = responses.get(str(status))
                if response is None:
                    response = responses[str(status)] = {
                        "description": DESCRIPTIONS[status],
                        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
                    }
                if status in HEADERS:
                    response.setdefault("headers", {}).update(HEADERS[status])
            operation["responses"] = dict(sorted(responses.items()))
    return result
