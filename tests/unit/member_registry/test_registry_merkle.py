"""RFC 6962 hashing against the certificate-transparency vectors, and negative cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from member_registry.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "rfc6962_merkle.json").read_text("utf-8")
)
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves_hex"]]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]


def test_empty_tree_root() -> None:
    assert tree_root([]).hex() == VECTORS["empty_root"]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots(size: int) -> None:
    assert tree_root(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize("case", VECTORS["inclusion"])
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = inclusion_proof(HASHES[:size], index)
    assert [p.hex() for p in proof] == case["proof"]
    verify_inclusion(HASHES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize("case", VECTORS["consistency"])
def test_consistency_vectors(case: dict[str, Any]) -> None:
    old, new = case["old"], case["new"]
    proof = consistency_proof(HASHES[:new], old)
    assert [p.hex() for p in proof] == case["proof"]
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


@pytest.mark.parametrize("case", VECTORS["inclusion"][1:])
def test_inclusion_tampering_is_refused(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = [bytes.fromhex(p) for p in case["proof"]]
    root = ROOTS[size - 1]
    with pytest.raises(ProofError):
        verify_inclusion(_flip(HASHES[index]), index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[index], index, size, [_flip(proof[0]), *proof[1:]], root)
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[index], index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[index], index, size, [*proof, proof[0]], root)
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[index], index, size, proof, _flip(root))
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[index], size, size, proof, root)


@pytest.mark.parametrize("case", VECTORS["consistency"][1:])
def test_consistency_tampering_is_refused(case: dict[str, Any]) -> None:
    old, new = case["old"], case["new"]
    proof = [bytes.fromhex(p) for p in case["proof"]]
    old_root, new_root = ROOTS[old - 1], ROOTS[new - 1]
    with pytest.raises(ProofError):
        verify_consistency(old, new, _flip(old_root), new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, _flip(new_root), proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [*proof, proof[0]])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [_flip(proof[-1]), *proof[:-1]])
    with pytest.raises(ProofError):
        verify_consistency(new, old, new_root, old_root, proof)


def test_equal_sizes_need_equal_roots() -> None:
    verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
    with pytest.raises(ProofError):
        verify_consistency(3, 3, ROOTS[2], ROOTS[3], [])


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_every_proof_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    root = root_from_leaf_hashes(hashes)
    index = data.draw(st.integers(0, len(hashes) - 1))
    verify_inclusion(hashes[index], index, len(hashes), inclusion_proof(hashes, index), root)
    old = data.draw(st.integers(1, len(hashes)))
    old_root = root_from_leaf_hashes(hashes[:old])
    verify_consistency(old, len(hashes), old_root, root, consistency_proof(hashes, old))
