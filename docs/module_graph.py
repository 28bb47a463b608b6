"""Draw PyGaSe's modules and who imports whom, from the code itself, as a Mermaid diagram.

    python docs/module_graph.py            # print the diagram
    python docs/module_graph.py --write    # put it into docs/architecture.md, between its markers

`tests/test_architecture.py` checks that the diagram in docs/architecture.md is the one this prints, so
the picture cannot drift from the code. Imports of the foundation modules (values, events, errors and
small utilities that nearly every module uses) are left out of the arrows to keep the picture readable;
they are listed in their own box.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = (
    "<!-- module graph: begin (python docs/module_graph.py --write) -->",
    "<!-- module graph: end -->",
)

#: The protocol core: bytes and time in, bytes and typed outputs out; no socket, thread or clock.
CORE = [
    "_connection",
    "_reliability",
    "_recovery",
    "_transfer",
    "_client_core",
    "_server_connection",
    "_server_core",
    "_server_gate",
    "_server_admission",
    "_seats",
    "_packages",
    "_handshake",
    "_header",
    "_crypto",
    "_event_order",
    "_outputs",
    "_rendezvous",
    "_rendezvous_host",
    "_rendezvous_player",
    "_relay_core",
    "_endpoints",
    "_room_codes",
]
#: What drives the core or runs the game: sockets, threads, clocks, the simulator.
DRIVERS = [
    "_transport",
    "_sockets",
    "_rendezvous_io",
    "_listing",
    "_server",
    "_client_state",
    "_event_router",
    "_client_args",
    "_network_thread",
    "_watch",
    "_link",
    "_store",
    "_readonly",
    "_game_loop",
    "_thread_bridge",
    "testing",
]
#: The public API (the PyGaSe 0.3.1 modules and the additions of this version).
PUBLIC = ["client", "backend", "connection", "netstats", "relay", "quantize"]
#: Used nearly everywhere: shown once, not as arrows.
FOUNDATION = ["gamestate", "event", "utils", "errors", "_codec", "_ratelimit"]


def imports_of(module: str) -> set[str]:
    """The pygase modules `pygase/<module>.py` imports (by their short names)."""
    tree = ast.parse((ROOT / "pygase" / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pygase":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("pygase."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("pygase."))
    return found - {module}


def _node(module: str) -> str:
    """A Mermaid node id: `connection` and `_connection` must differ."""
    return f"m{module}"


def all_modules() -> list[str]:
    return sorted(path.stem for path in (ROOT / "pygase").glob("*.py") if path.stem != "__init__")


def diagram() -> str:
    """The Mermaid flowchart of PyGaSe's modules."""
    known = set(CORE + DRIVERS + PUBLIC + FOUNDATION)
    unplaced = [module for module in all_modules() if module not in known]
    if unplaced:
        raise SystemExit(f"place these modules in a layer of docs/module_graph.py: {', '.join(unplaced)}")
    lines = ["```mermaid", "flowchart TD"]
    for name, title, members in (
        ("public", "public API", PUBLIC),
        ("drivers", "drivers and the game side: sockets, threads, clocks", DRIVERS),
        ("core", "protocol core: no socket, thread or clock", CORE),
        ("foundation", "foundation, used by nearly all", FOUNDATION),
    ):
        lines.append(f'    subgraph {name}["{title}"]')
        lines.extend(f"        {_node(module)}[{module}]" for module in members)
        lines.append("    end")
    for module in PUBLIC + DRIVERS + CORE:
        for target in sorted(imports_of(module) & known - set(FOUNDATION)):
            lines.append(f"    {_node(module)} --> {_node(target)}")
    lines.append("```")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = diagram()
    if "--write" not in argv:
        print(text)
        return 0
    document = DOC.read_text(encoding="utf-8")
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    DOC.write_text(document[:start] + "\n" + text + "\n" + document[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
