"""No import circle among the project's modules: apps/, controlplane/ and worker/ import one way.

A circle (``a`` imports ``b``, which imports ``a``, directly or through others) makes the order of
start-up matter, hides which part sits above which, and is where layers start to blur. Every import
counts, at any depth of a module: one inside a function is a circle that waits for its first call.
Relative imports are resolved; ``from package import name`` counts as an import of ``package.name``
when that is a module, else of ``package``. A package's ``__init__`` is not counted as imported by
its own submodules (Python runs it first, but that is the package's shape, not a dependency).
Migrations and tests are left out: nothing imports them.
"""

from __future__ import annotations

import ast
import shutil
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("apps", "controlplane", "worker")
LEFT_OUT = ("migrations", "tests", "__pycache__")


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the trees under ``root``, by dotted name."""
    found = {}
    for tree in TREES:
        for path in sorted((root / tree).rglob("*.py")):
            if any(part in LEFT_OUT for part in path.relative_to(root).parts):
                continue
            found[_module_name(root, path)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The dotted names one import statement asks for, relative ones resolved against ``package``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".") if package else []
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}, among the project's own modules."""
    modules = _modules(root)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            wanted = _imported(node, package)
            if isinstance(node, ast.ImportFrom):
                # ``from pkg import a, b``: the submodules a and b where they are modules, else pkg itself.
                submodules = [w for w in wanted[:-1] if w in modules]
                wanted = submodules if len(submodules) == len(wanted) - 1 else [*submodules, wanted[-1]]
            for target in wanted:
                while target and target not in modules:  # ``import apps.x.y.Name`` -> the module apps.x.y
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components with more than one module, iteratively (no recursion limit to reach)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {})))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def _shortest_circle(graph: dict[str, dict[str, int]], members: list[str]) -> list[str]:
    """One shortest circle through the component's first module, as the list of modules it passes."""
    inside, start = set(members), members[0]
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt in inside and nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no circle through {start} in {members}")  # a strongly connected component has one


def import_circles(root: Path) -> list[str]:
    """Each circle as ``a (path:line) -> b (path:line) -> a``, naming where each import is; none when one-way."""
    graph = import_graph(root)
    modules = _modules(root)
    described = []
    for members in _strongly_connected(graph):
        circle = _shortest_circle(graph, members)
        steps = [
            f"{a} ({modules[a].relative_to(root)}:{graph[a][b]} imports {b})"
            for a, b in zip(circle, circle[1:], strict=False)
        ]
        described.append(" -> ".join(steps) + f"; {len(members)} modules in this knot: {', '.join(members)}")
    return described


def test_no_import_circle_among_the_projects_modules():
    assert import_circles(ROOT) == []


def test_the_check_resolves_relative_imports_inside_functions_and_leaves_migrations_out(tmp_path):
    # given a tiny project: alpha imports beta inside a function, beta imports alpha relatively,
    # and a migration that imports beta (nothing imports a migration, so it closes no circle)
    for tree in TREES:
        (tmp_path / tree).mkdir()
        (tmp_path / tree / "__init__.py").write_text("")
    (tmp_path / "apps" / "shop").mkdir()
    (tmp_path / "apps" / "shop" / "__init__.py").write_text("")
    (tmp_path / "apps" / "shop" / "alpha.py").write_text("def react():\n    from apps.shop.beta import thing\n")
    (tmp_path / "apps" / "shop" / "beta.py").write_text("from . import alpha\n\nthing = 1\n")
    (tmp_path / "apps" / "shop" / "migrations").mkdir()
    (tmp_path / "apps" / "shop" / "migrations" / "0001_initial.py").write_text("from apps.shop import beta\n")

    # when the circles are listed
    circles = import_circles(tmp_path)

    # then the one circle is named, with where each import is
    assert circles == [
        "apps.shop.alpha (apps/shop/alpha.py:2 imports apps.shop.beta) -> "
        "apps.shop.beta (apps/shop/beta.py:1 imports apps.shop.alpha); "
        "2 modules in this knot: apps.shop.alpha, apps.shop.beta"
    ]


def test_a_circle_planted_in_a_copy_of_the_project_is_found(tmp_path):
    # given a copy of the project where the core's models import the registry's inside a function
    # (the registry's models import the core's at the top)
    for tree in TREES:
        shutil.copytree(ROOT / tree, tmp_path / tree, ignore=shutil.ignore_patterns(*LEFT_OUT))
    planted = tmp_path / "apps" / "core" / "models.py"
    planted.write_text(planted.read_text() + "\n\ndef _probe():\n    from apps.registry.models import ModelVersion\n")
    line = len(planted.read_text().splitlines())

    # when the circles are listed
    circles = import_circles(tmp_path)

    # then exactly that one is reported, naming the planted import
    assert len(circles) == 1, circles
    assert f"apps.core.models (apps/core/models.py:{line} imports apps.registry.models)" in circles[0], circles
