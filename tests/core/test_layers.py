"""The apps are layered: a lower app never imports a higher one, not even inside a function.

Reactions across apps go the other way, as published events (``apps.jobs.events``): the lower app
publishes, the higher app subscribes in its ``AppConfig.ready()``. An import found here, at any
depth of a module (a function body included), is a reaction wired the wrong way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each app may import only apps listed before it. (core, audit, accounts and rbac are the foundation.)
LAYERS = ["jobs", "registry", "evidence", "policies", "releases", "deployments", "notifications"]
# Never imported by an app: the worker's code sits above every app (the web process sends tasks by name).
ABOVE_ALL = ("worker",)
# Pages and API views compose what several apps show (a version page lists its releases); they are not where
# state changes or reactions live, so they may read a higher app's selectors and models.
PRESENTATION = ("views.py", "selectors.py", "urls.py", "forms.py", "api")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, module-level or inside a function, relative ones resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([base] if base else []))
            found.append((node.lineno, base))
    return found


def _offences(app: str, forbidden: tuple[str, ...], *, presentation: bool) -> list[str]:
    """Imports of ``forbidden`` modules (or their submodules) anywhere in ``app``; its pages too with ``presentation``.

    A higher app's ``choices`` (constant enumerations such as the evidence kinds a model may ask for by
    default) are data, not behaviour, and are allowed."""
    offences = []
    for path in sorted((ROOT / "apps" / app).rglob("*.py")):
        relative = path.relative_to(ROOT / "apps" / app)
        if "migrations" in relative.parts or (not presentation and relative.parts[0] in PRESENTATION):
            continue
        for line, module in _imports(path):
            if module.endswith(".choices"):
                continue
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                offences.append(f"apps/{app}/{relative}:{line} imports {module}")
    return offences


def _higher(app: str) -> tuple[str, ...]:
    return tuple(f"apps.{name}" for name in LAYERS[LAYERS.index(app) + 1 :]) + ABOVE_ALL


@pytest.mark.parametrize("app", LAYERS)
def test_no_app_imports_an_app_above_it_where_it_changes_state(app):
    assert _offences(app, _higher(app), presentation=False) == []


@pytest.mark.parametrize("app", ["jobs", "registry", "evidence", "policies"])
def test_no_lower_app_imports_notifications_at_all(app):
    assert _offences(app, ("apps.notifications",), presentation=True) == []


@pytest.mark.parametrize("app", ["jobs", "evidence"])
def test_jobs_and_evidence_never_import_releases(app):
    assert _offences(app, ("apps.releases",), presentation=True) == []


def test_the_check_finds_an_import_inside_a_function():
    probe = ROOT / "apps" / "evidence" / "_layer_probe.py"
    probe.write_text("def react():\n    from apps.releases.services import releases_reevaluate\n")
    try:
        assert _offences("evidence", _higher("evidence"), presentation=False) == [
            "apps/evidence/_layer_probe.py:2 imports apps.releases.services"
        ]
    finally:
        probe.unlink()
