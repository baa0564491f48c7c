"""The house's arrows: data flows one way, and no import points back up.

Read from the source (every ``import``, including those inside functions), so
a lazy import cannot hide an arrow that runs the wrong way.
"""

from __future__ import annotations

import ast
import functools
import graphlib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("usermessages", "blockstorage")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of ours this file imports, resolved to full dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from usermessages.reader import policy" may name a submodule.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in OURS)
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for top in OURS for p in (ROOT / top).rglob("*.py")
             if "migrations" not in p.parts]
    modules = {_module_name(path) for path in files}

    def module_of(name: str) -> str:
        # "usermessages.errors.CatalogError" is the module usermessages.errors.
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    return {_module_name(path): {module_of(n) for n in _imports(path)} for path in files}


GRAPH = _graph()


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _arrows(source: str, target: str) -> list[str]:
    return sorted(f"{module} -> {name}" for module, names in GRAPH.items()
                  if _within(module, source) for name in names if _within(name, target))


@pytest.mark.parametrize(("source", "target"), [
    # The two front ends are skins over the reader: neither knows the other.
    ("usermessages.api", "usermessages.viewer"),
    ("usermessages.viewer", "usermessages.api"),
    # What both front ends share sits below both. The reader and the web toolkit are
    # two such pieces beside each other: the reader decides who reads what, the toolkit
    # renders it (microversions, faults, projections); neither knows the other.
    ("usermessages.reader", "usermessages.api"),
    ("usermessages.reader", "usermessages.viewer"),
    ("usermessages.reader", "usermessages.web"),
    ("usermessages.web", "usermessages.api"),
    ("usermessages.web", "usermessages.viewer"),
    ("usermessages.web", "usermessages.reader"),
    # The store is read, it never reads its readers.
    ("usermessages.store", "usermessages.api"),
    ("usermessages.store", "usermessages.viewer"),
    ("usermessages.store", "usermessages.reader"),
    ("usermessages.store", "usermessages.service"),
    # Webhooks read the store and render with web; the front ends manage them, never back.
    ("usermessages.webhooks", "usermessages.api"),
    ("usermessages.webhooks", "usermessages.viewer"),
    ("usermessages.webhooks", "usermessages.reader"),
    ("usermessages.store", "usermessages.webhooks"),
    # The reference service uses the public reader and toolkit, not the API's internals.
    ("blockstorage", "usermessages.api"),
    ("blockstorage", "usermessages.viewer"),
    # Only the composition root assembles the app.
    ("usermessages.api", "usermessages.service"),
    ("usermessages.viewer", "usermessages.service"),
    ("usermessages.reader", "usermessages.service"),
    # The sinks serve the SDK and never import it, nor anything downstream of the bus.
    ("usermessages.sinks", "usermessages.messenger"),
    ("usermessages.sinks", "usermessages.collector"),
    ("usermessages.sinks", "usermessages.zaqar.collector"),
    ("usermessages.sinks", "usermessages.zaqar.subscriptions"),
    # The collectors and the store are downstream: they never import a sink.
    ("usermessages.collector", "usermessages.sinks"),
    ("usermessages.zaqar", "usermessages.sinks"),
    ("usermessages.store", "usermessages.sinks"),
])
def test_no_arrow_points_back(source: str, target: str) -> None:
    assert _arrows(source, target) == []


def test_the_openstackclient_plugin_is_a_client_of_the_api_alone() -> None:
    # It runs inside `openstack`, beside only the osc extra: nothing of ours but itself,
    # and nothing of ours imports it (the SDK stays as light as it was).
    plugin = [module for module in GRAPH if _within(module, "usermessages.osc")]
    assert len(plugin) > 5
    assert {name for module in plugin for name in GRAPH[module]
            if not _within(name, "usermessages.osc")} == set()
    assert [module for module, names in GRAPH.items() if not _within(module, "usermessages.osc")
            and any(_within(name, "usermessages.osc") for name in names)] == []


def test_the_catalog_imports_nothing_of_ours_but_errors() -> None:
    assert GRAPH["usermessages.catalog"] <= {"usermessages.errors"}


def test_the_graph_sees_the_arrows_that_do_exist() -> None:
    # Guards the test itself: a parser that found nothing would pass everything above.
    assert _arrows("usermessages.service", "usermessages.viewer")
    assert _arrows("usermessages.api", "usermessages.reader")
    assert _arrows("usermessages.viewer", "usermessages.reader")
    assert _arrows("blockstorage.api", "usermessages.reader")
    assert _arrows("usermessages.messenger", "usermessages.sinks")
    assert _arrows("usermessages.sinks", "usermessages.zaqar")


@pytest.mark.parametrize("package", ["usermessages.reader", "usermessages.web"])
def test_shared_packages_export_a_sorted_public_surface(package: str) -> None:
    module = __import__(package, fromlist=["__all__"])
    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)


# --- No private cross-imports, no import deferred to dodge a cycle -----------------------

@dataclass(frozen=True)
class Edge:
    """One import of a module of ours: what it names, where, and whether it is deferred."""

    source: str
    target: str  # the module imported from
    names: tuple[str, ...]  # what `from target import ...` takes (empty for `import target`)
    line: int
    # Inside a function or class, or under `if TYPE_CHECKING:`: not run when the module loads.
    deferred: bool


MODULES = set(GRAPH)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _edges(path: Path) -> list[Edge]:
    """Every import of ours in ``path``; ``from pkg import mod`` is an edge to pkg.mod alone."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = _tree(path)
    edges: list[Edge] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OURS:
                    edges.append(Edge(module, alias.name, (), node.lineno, deferred))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] in OURS:
                names = tuple(a.name for a in node.names if f"{base}.{a.name}" not in MODULES)
                edges.extend(Edge(module, f"{base}.{a.name}", (), node.lineno, deferred)
                             for a in node.names if f"{base}.{a.name}" in MODULES)
                if names:
                    edges.append(Edge(module, base, names, node.lineno, deferred))
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef |
                                       ast.ClassDef | ast.Lambda) or _is_type_checking(node)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return edges


EDGES = [edge for top in OURS for path in (ROOT / top).rglob("*.py")
         if "migrations" not in path.parts for edge in _edges(path)]


def _private_uses(path: Path) -> list[str]:
    """``module._name`` where ``module`` names another module of ours (an alias bound here)."""
    tree = _tree(path)
    me = _module_name(path)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return sorted(f"{me}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in aliases and aliases[node.value.id] != me
                  and node.attr.startswith("_") and not node.attr.startswith("__"))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(package: str) -> list[str]:
    """Names another module keeps to itself (``_name``), imported or used from ``package``."""
    found = [f"{e.source}:{e.line} imports {e.target}.{name}" for e in EDGES
             if _within(e.source, package) and e.target != e.source
             for name in e.names if _private(name)]
    found += [use for path in (ROOT / package.replace(".", "/")).rglob("*.py")
              if "migrations" not in path.parts for use in _private_uses(path)]
    return sorted(found, key=lambda text: (text.split(":")[0], text.split(" ", 1)[1]))


# Found when the rule came in (issue 23 point 5): the viewer's webhooks page borrows the
# pages' helpers. The list may only shrink; moving those helpers to a module of their
# own is issue 23's CSRF work.
KNOWN_PRIVATE_IMPORTS = [
    "usermessages.viewer.webhooks:15 imports usermessages.viewer.routes._caller",
    "usermessages.viewer.webhooks:15 imports usermessages.viewer.routes._reader",
    "usermessages.viewer.webhooks:15 imports usermessages.viewer.routes._render",
]


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports("usermessages") == KNOWN_PRIVATE_IMPORTS
    assert private_imports("blockstorage") == []


# What each module imports when it loads.
LOADS: dict[str, set[str]] = {}
for _edge in EDGES:
    if not _edge.deferred and _edge.target in MODULES:
        LOADS.setdefault(_edge.source, set()).add(_edge.target)


def _reaches(start: str, goal: str) -> bool:
    """Does ``start``, loading, import ``goal`` (through imports run when modules load)?"""
    seen, todo = {start}, [start]
    while todo:
        for target in LOADS.get(todo.pop(), ()):
            if target == goal:
                return True
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return False


def cycle_dodges(package: str) -> list[str]:
    """Imports of ``package`` deferred (in a function, under TYPE_CHECKING) whose module
    imports the importer back when it loads: a cycle the deferral hides."""
    return sorted(f"{e.source}:{e.line} defers {e.target}" for e in EDGES
                  if e.deferred and _within(e.source, package) and e.target in MODULES
                  and e.target != e.source and _reaches(e.target, e.source))


def test_the_sdk_loads_only_the_sinks_it_builds() -> None:
    # `import usermessages` is the SDK: Messenger.from_url imports a background sink (and
    # kombu, or Zaqar's client) only when it builds one; the database sink imports the
    # store only when built. The sinks' face declares what they share and loads none.
    for built_when_asked in ("usermessages.sinks.bus", "usermessages.sinks.zaqar",
                             "usermessages.sinks.forwarding", "usermessages.bus",
                             "usermessages.store.engine", "usermessages.collector"):
        assert not _reaches("usermessages", built_when_asked), built_when_asked
    assert not [name for name in LOADS.get("usermessages.sinks", ())
                if _within(name, "usermessages.sinks") and name != "usermessages.sinks"]
    assert _reaches("usermessages", "usermessages.sinks.database")  # the check sees loads


def test_the_cli_defers_no_import_to_dodge_a_cycle() -> None:
    assert cycle_dodges("usermessages.cli") == []
    # Nor any of its own modules, cycle or not: each imports the others openly.
    assert [f"{e.source}:{e.line} defers {e.target}" for e in EDGES
            if e.deferred and _within(e.source, "usermessages.cli")
            and _within(e.target, "usermessages.cli")] == []


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    cli = {e.source for e in EDGES if _within(e.source, "usermessages.cli")}
    graph = {module: {e.target for e in EDGES if e.source == module and e.target in cli}
             for module in cli}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle


def test_the_private_and_cycle_checks_see_what_they_look_for() -> None:
    # Guards the checks: a parser that found nothing would pass everything above.
    assert KNOWN_PRIVATE_IMPORTS and private_imports("usermessages.viewer")
    deferred = [e for e in EDGES if e.deferred and e.source == "usermessages.cli.server"]
    assert {"usermessages.service", "usermessages.store.migrate"} <= {e.target for e in deferred}
    assert _reaches("usermessages.cli.main", "usermessages.cli.common")
    assert not _reaches("usermessages.cli.common", "usermessages.cli.main")
