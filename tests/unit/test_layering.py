"""The import direction of DESIGN §1, who may touch key material, and who signs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["certs", "member_registry", "policies", "gateway"]
# Modules outside certs/ that may import cryptography.hazmat: the small signing modules
# and the AEAD that seals logged bodies under their subject's key.
HAZMAT_ALLOWED = {
    "gateway/audit/sealing.py",
    "gateway/console/links.py",
    "gateway/signing.py",
    "gateway/tokens.py",
    "member_registry/signing.py",
    "member_registry/tokens.py",
    "policies/receipts.py",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_imports_only_go_down_the_layers(package: str) -> None:
    forbidden = set(LAYERS[LAYERS.index(package) + 1 :])
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in imported_modules(path)
        if name.split(".")[0] in forbidden
    ]
    assert not offenders, offenders


def test_only_crypto_modules_touch_hazmat() -> None:
    offenders = []
    for package in LAYERS[1:]:
        for path in sources(package):
            relative = path.relative_to(ROOT).as_posix()
            if relative in HAZMAT_ALLOWED:
                continue
            if any(name.startswith("cryptography.hazmat") for name in imported_modules(path)):
                offenders.append(relative)
    assert not offenders, offenders


def test_every_signature_goes_through_the_jws_recipe() -> None:
    # certs/jws.py signs and verifies on cryptography; no product module uses a JWT
    # library (the tests use PyJWT as an independent implementation to check against).
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in LAYERS
        for path in sources(package)
        for name in imported_modules(path)
        if name.split(".")[0] in {"jwt", "jose", "jwcrypto", "joserfc", "authlib"}
    ]
    assert not offenders, offenders
