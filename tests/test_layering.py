"""Imports go one way: the library does not load its test harness, pygase_pygame uses only public pygase."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYGASE_MODULES = sorted(
    "pygase" if path.stem == "__init__" else f"pygase.{path.stem}" for path in (ROOT / "pygase").glob("*.py")
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_client_does_not_import_the_test_harness():
    result = _run(
        "import pygase.client, sys; "
        "assert 'pygase.testing' not in sys.modules, 'pygase.client imports pygase.testing'"
    )
    assert result.returncode == 0, result.stderr


def _pygase_imports(path: Path) -> list:
    """(module, name) of every import of pygase in a source file; name is None for `import module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found += [(node.module or "", alias.name) for alias in node.names]
    return [(module, name) for module, name in found if module.split(".")[0] == "pygase"]


def test_the_link_simulator_imports_nothing_from_pygase():
    assert _pygase_imports(ROOT / "pygase" / "_link.py") == []


@pytest.mark.parametrize("module", PYGASE_MODULES)
def test_every_module_imports_on_its_own(module):
    """A fresh interpreter imports each module first: an import cycle would fail here."""
    result = _run(f"import {module}")
    assert result.returncode == 0, result.stderr


def test_the_testing_module_exports_the_link_simulator_of_the_library():
    import pygase._link
    import pygase.testing

    assert pygase.testing.LinkConditions is pygase._link.LinkConditions
    assert pygase.testing.LinkSimulator is pygase._link.LinkSimulator
    assert pygase.testing.SIMULATE_VARIABLE == "PYGASE_SIMULATE"


PYGAME_LAYER = sorted((ROOT / "pygase_pygame").glob("*.py"))


def _private(module: str, name) -> bool:
    parts = module.split(".") + ([name] if name else [])
    return any(part.startswith("_") for part in parts)


@pytest.mark.parametrize("path", PYGAME_LAYER, ids=lambda p: p.name)
def test_pygase_pygame_imports_no_private_pygase_names(path):
    imports = [(module, name) for module, name in _pygase_imports(path) if _private(module, name)]
    private = [f"from {module} import {name}" if name else f"import {module}" for module, name in imports]
    assert not private, f"{path.name} imports private pygase names: {private}"


@pytest.mark.parametrize("path", PYGAME_LAYER, ids=lambda p: p.name)
def test_pygase_pygame_source_mentions_no_private_pygase_names(path):
    """The same as text, for uses an import check does not see (`pygase._codec.pack`, importlib)."""
    source = path.read_text(encoding="utf-8")
    found = re.findall(r"\bpygase\._\w*|from\s+pygase\s+import\s+_\w*|_accepted_keywords", source)
    assert not found, f"{path.name} uses private pygase names: {found}"


def test_the_private_name_checks_catch_what_they_are_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pygase._codec\n"
        "from pygase import utils, _codec\n"
        "from pygase.event import (\n    Event,\n    _accepted_keywords,\n)\n"
        "from pygase.utils import accepted_keywords\n"
        "from pygase_pygame._hooks import call_declared\n",
        encoding="utf-8",
    )
    private = [(module, name) for module, name in _pygase_imports(sample) if _private(module, name)]
    assert private == [("pygase._codec", None), ("pygase", "_codec"), ("pygase.event", "_accepted_keywords")]
