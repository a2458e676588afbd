"""Layers point one way: cpu/ and mmu/ import nothing from devices/ or tier2/ (what the
hart needs of them lives in cpu/, or the machine hands it in)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RVEMU = Path(__file__).resolve().parent.parent / "rvemu"
LOWER = ("cpu", "mmu")
UPPER = ("rvemu.devices", "rvemu.tier2")


def imported(path: Path) -> list[str]:
    """The absolute names of the modules a file imports (relative imports resolved)."""
    package = ["rvemu", path.parent.name]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize(
    "path",
    [p for layer in LOWER for p in sorted((RVEMU / layer).glob("*.py"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_lower_layers_import_nothing_from_upper_ones(path: Path) -> None:
    wrong = [name for name in imported(path) if name.startswith(UPPER)]
    assert not wrong, f"{path.relative_to(RVEMU)} imports {wrong}"
