from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from member_registry.anchor import Anchor, anchor_digest, load_anchor, write_anchor
from member_registry.errors import AnchorError
from tests.unit.member_registry.registry_samples import NOW


def test_round_trip_and_digest(tmp_path: Path, anchor: Anchor,
                               other_identity: tuple[ec.EllipticCurvePrivateKey,
                                                     x509.Certificate]) -> None:
    rotated = replace(anchor, verification_certificates=(
        *anchor.verification_certificates, other_identity[1]))
    path = tmp_path / "anchor.json"
    write_anchor(rotated, path)
    assert load_anchor(path) == rotated
    assert anchor_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    document = json.loads(path.read_text())
    assert document["format"] == "renkei-anchor/1"
    assert document["generated_at"] == "2026-11-24T10:00:00Z"
    assert len(document["verification_certificates"]) == 2


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="renkei-anchor/2"), "format"),
        (lambda d: d.update(extra=True), "unknown keys"),
        (lambda d: d.pop("instance"), "missing instance"),
        (lambda d: d.update(verification_certificates=[]), "no verification certificate"),
        (lambda d: d.update(verification_certificates=["garbage"]), "PEM"),
        (lambda d: d.update(download_urls=["ftp://x"]), "URL"),
        (lambda d: d.update(generated_at="yesterday"), "generated_at"),
    ],
)
def test_malformed_anchors_are_rejected(tmp_path: Path, anchor: Anchor, change: Any,
                                        message: str) -> None:
    document = anchor.to_json_dict()
    change(document)
    with pytest.raises(AnchorError, match=message) as info:
        load_anchor(_write(tmp_path / "anchor.json", document))
    assert info.value.code == "registry.anchor_invalid"


def test_unreadable_and_non_json_anchors_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(AnchorError, match="cannot read"):
        load_anchor(tmp_path / "missing.json")
    with pytest.raises(AnchorError, match="cannot read"):
        anchor_digest(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AnchorError, match="JSON"):
        load_anchor(tmp_path / "bad.json")


def test_anchor_needs_an_aware_time(anchor: Anchor) -> None:
    with pytest.raises(AnchorError):
        replace(anchor, generated_at=NOW.replace(tzinfo=None))
