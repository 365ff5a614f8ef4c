"""The declared type of each field of a dataclass, for the code that reads them at run time
(the config loader, the journal codec).

`typing.get_type_hints` reads a class's `__annotations__`. The core's dataclasses are
compiled by mypyc (setup.py), which fills `__annotations__` with runtime classes and drops
unions (`int | None` reads back as `type`). For such a class the annotations are read from
its module's source instead, which the install keeps beside the compiled module, and
evaluated in the module's namespace, as `get_type_hints` would evaluate them.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import threading
import typing
from functools import cache
from pathlib import Path
from typing import Any


# CPython 3.11's parser fails ("AST constructor recursion depth mismatch") when two threads
# parse at once, as the journal's readers in several threads may
_PARSING = threading.Lock()


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> its declared type, resolved (a string annotation evaluated)."""
    if not hasattr(cls, "__mypyc_attrs__"):
        return typing.get_type_hints(cls)
    with _PARSING:
        return _from_source(cls)


def _from_source(cls: type) -> dict[str, Any]:
    module = sys.modules[cls.__module__]
    source = Path(module.__file__ or "").with_name(cls.__module__.rpartition(".")[2] + ".py")
    fields = {f.name for f in dataclasses.fields(cls)}
    for node in ast.parse(source.read_text(), str(source)).body:
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return {
                stmt.target.id: eval(ast.unparse(stmt.annotation), vars(module))  # noqa: S307  (our own source's annotations)
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id in fields
            }
    raise TypeError(f"{cls.__qualname__} is not defined at the top level of {source}")
