"""Imports run one way: agent -> services (clients -> wire protocols); configs and latency import
neither. A leaf may be imported by anyone: latency imports nothing of ours, configs only latency's
budget rule."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"agent", "services", "configs", "latency"}
MAY_IMPORT = {
    "agent": {"agent", "services", "configs", "latency"},
    "services": {"services", "configs", "latency"},
    "configs": {"configs", "latency"},
    "latency": {"latency"},
}


def imports(path: Path) -> set[str]:
    """The packages of ours `path` imports (absolute imports; relative ones stay in its package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_run_one_way(package):
    wrong = {
        str(path.relative_to(REPO)): sorted(imports(path) - MAY_IMPORT[package])
        for path in sorted((REPO / package).rglob("*.py"))
    }
    assert {f: w for f, w in wrong.items() if w} == {}


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "client.py"
    bad.write_text("from agent.session import build_session\nimport latency.trace\nfrom . import sibling\n")
    assert imports(bad) - MAY_IMPORT["services"] == {"agent"}
