"""The house's arrows: data flows one way, and no import points back up.

Read from the source (every ``import``, including those inside functions), so
a lazy import cannot hide an arrow that runs the wrong way.
"""

from __future__ import annotations

import ast
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
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
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
    # What both front ends share sits below both.
    ("usermessages.reader", "usermessages.api"),
    ("usermessages.reader", "usermessages.viewer"),
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
])
def test_no_arrow_points_back(source: str, target: str) -> None:
    assert _arrows(source, target) == []


def test_the_catalog_imports_nothing_of_ours_but_errors() -> None:
    assert GRAPH["usermessages.catalog"] <= {"usermessages.errors"}


def test_the_graph_sees_the_arrows_that_do_exist() -> None:
    # Guards the test itself: a parser that found nothing would pass everything above.
    assert _arrows("usermessages.service", "usermessages.viewer")
    assert _arrows("usermessages.api", "usermessages.reader")
    assert _arrows("usermessages.viewer", "usermessages.reader")
    assert _arrows("blockstorage.api", "usermessages.reader")


@pytest.mark.parametrize("package", ["usermessages.reader", "usermessages.web"])
def test_shared_packages_export_a_sorted_public_surface(package: str) -> None:
    module = __import__(package, fromlist=["__all__"])
    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
