"""Every exception class the project defines is under UserMessagesError, so each front
end renders ours in one place and nothing of ours escapes as a bare Exception."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import blockstorage
import usermessages
from usermessages.errors import UserMessagesError


def _our_exception_classes() -> list[type[BaseException]]:
    found = []
    for package in (usermessages, blockstorage):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" in module_info.name or module_info.name.endswith("__main__"):
                continue  # alembic scripts; __main__ runs the CLI
            module = importlib.import_module(module_info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    found.append(cls)
    return found


def test_every_exception_of_ours_is_a_usermessages_error() -> None:
    classes = _our_exception_classes()
    assert len(classes) > 20  # the walk really found the tree
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes
              if not issubclass(c, UserMessagesError)]
    assert strays == []
