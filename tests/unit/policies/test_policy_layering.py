"""policies may import only certs and member_registry (DESIGN §1), and the field filter
stays free of third-party parsers."""

from __future__ import annotations

import ast
from pathlib import Path

import policies

SOURCE = Path(policies.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_policies_never_imports_gateway() -> None:
    for path in SOURCE.glob("*.py"):
        assert "gateway" not in imported_roots(path), path.name


def test_only_the_receipt_signer_names_hazmat_key_types() -> None:
    for path in SOURCE.glob("*.py"):
        if path.name != "receipts.py":
            assert "hazmat" not in path.read_text(encoding="utf-8"), path.name
