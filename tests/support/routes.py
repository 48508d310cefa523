"""Every route the URL conf serves, with the HTTP methods its view accepts.

``served_routes()`` walks the URL patterns recursively and returns ``(name, method)`` pairs, where
``name`` is the namespaced URL name (``"api:registry-model-list"``, ``"registry:model_detail"``).
A DRF view accepts the methods its class implements; a dashboard view the methods named by its
``require_http_methods`` / ``require_POST`` / ``require_safe`` decorator (a view without one accepts
GET and POST). HEAD and OPTIONS follow GET and are not listed.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver

DRF_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def view_methods(callback) -> tuple[str, ...]:
    """The methods a view function or DRF view accepts (HEAD and OPTIONS left out)."""
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None:
        return tuple(m for m in DRF_METHODS if hasattr(cls, m.lower()))
    func = callback
    while func is not None:
        code = getattr(func, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars and func.__closure__:
            allowed = func.__closure__[code.co_freevars.index("request_method_list")].cell_contents
            return tuple(m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m in allowed)
        func = getattr(func, "__wrapped__", None)
    return ("GET", "POST")


def served_routes() -> set[tuple[str, str]]:
    """(namespaced URL name, method) for every named route the root URL conf serves."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, namespace: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace
                walk(p.url_patterns, f"{namespace}{ns}:" if ns else namespace)
            elif isinstance(p, URLPattern):
                name = f"{namespace}{p.name}" if p.name else f"{namespace}<unnamed {p.pattern}>"
                for method in view_methods(p.callback):
                    found.add((name, method))

    walk(get_resolver().url_patterns, "")
    return found
