"""The layering docs/architecture.md describes is the code's: the diagram is current, the protocol core
touches no socket, thread or clock, no module grows past about 500 lines."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(30)


def _module_graph():
    spec = importlib.util.spec_from_file_location("module_graph", ROOT / "docs" / "module_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["module_graph"] = module
    spec.loader.exec_module(module)
    return module


def test_the_diagram_in_docs_is_made_from_the_current_code():
    graph = _module_graph()
    document = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert graph.diagram() in document, "run: python docs/module_graph.py --write"


def test_the_protocol_core_imports_no_socket_thread_or_clock():
    forbidden = {"asyncio", "socket", "threading", "time", "selectors", "random"}
    for module in _module_graph().CORE:
        tree = ast.parse((ROOT / "pygase" / f"{module}.py").read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & forbidden, f"pygase/{module}.py imports {sorted(imported & forbidden)}"


def test_no_module_is_much_longer_than_500_lines():
    for path in sorted((ROOT / "pygase").glob("*.py")) + sorted((ROOT / "pygase_pygame").glob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 550, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"
