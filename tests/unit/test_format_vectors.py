"""The vectors in tests/vectors/formats/, reproduced from docs/formats.md alone.

Nothing here imports Renkei: canonical JSON, hashes, the Merkle tree and the
description rules are written out from the page, certificates are checked with
``cryptography`` and signatures with PyJWT, an independent JWS implementation.
A change to a format that the page does not describe fails here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "formats"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return document


def certificate(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((VECTORS / name).read_bytes())


def canonical(value: Any) -> bytes:
    """docs/formats.md, Conventions: RFC 8785 for strings, integers, literals, ASCII keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def algorithm_of(key: Any) -> str:
    """docs/formats.md: the algorithm follows the signer's key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        assert isinstance(key.curve, ec.SECP256R1)
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size >= 2048
    return "PS256"


def check_jws(token: str, *, typ: str, signer: x509.Certificate, header: set[str],
              payload: dict[str, Any]) -> dict[str, Any]:
    """docs/formats.md, Signed documents: form, header, algorithm by key, payload bytes."""
    encoded_header, encoded_payload, _ = token.split(".")
    protected = json.loads(unb64url(encoded_header))
    assert unb64url(encoded_header) == canonical(protected)
    assert set(protected) == {"alg", "typ", *header}
    assert protected["typ"] == typ
    key = signer.public_key()
    algorithm = algorithm_of(key)
    assert protected["alg"] == algorithm
    if "x5c" in header:
        assert base64.b64decode(protected["x5c"][0]) == signer.public_bytes(Encoding.DER)
    if "kid" in header:
        assert protected["kid"] == hashlib.sha256(signer.public_bytes(Encoding.DER)).hexdigest()
    decoded = jwt.api_jws.PyJWS().decode_complete(token, key=key, algorithms=[algorithm])
    assert decoded["payload"] == canonical(payload) == unb64url(encoded_payload)
    return protected


@pytest.mark.parametrize("name", ["consumer-sign.pem", "provider-sign.pem", "provider-auth.pem"])
def test_the_vector_certificates_are_issued_by_the_vector_ca(name: str) -> None:
    certificate(name).verify_directly_issued_by(certificate("ca.pem"))


def test_the_signed_request() -> None:
    vector = load("request.json")
    description, body = vector["description"], vector["body"].encode()
    target = urlsplit(vector["target"])
    parts = target.path.split("/")
    assert parts[:2] == ["", "r1"]
    assert description["service"] == "/".join(parts[2:7])
    assert description["path"] == "/" + "/".join(parts[7:])
    assert description["query"] == target.query
    assert description["method"] == vector["method"]
    assert (description["v"], description["kind"]) == (1, "request")
    assert description["body_sha256"] == b64url(hashlib.sha256(body).digest())
    assert description["body_length"] == len(body)
    check_jws(vector["token"], typ="renkei-request+jws", signer=certificate("consumer-sign.pem"),
              header={"x5c"}, payload=description)
    digest = hashlib.sha512(vector["token"].encode("ascii")).digest()
    assert vector["request_hash"] == base64.b64encode(digest).decode()


def test_the_signed_response_is_bound_to_the_request() -> None:
    request, vector = load("request.json"), load("response.json")
    description, body = vector["description"], vector["body"].encode()
    assert (description["v"], description["kind"]) == (1, "response")
    assert description["request_id"] == request["description"]["request_id"]
    assert description["request_hash"] == request["request_hash"]
    assert description["body_sha256"] == b64url(hashlib.sha256(body).digest())
    assert description["body_length"] == len(body)
    check_jws(vector["token"], typ="renkei-response+jws", signer=certificate("provider-sign.pem"),
              header={"x5c"}, payload=description)


ROW_FIELDS = {
    "node_id", "seq", "logged_at", "role", "message_id", "request_id", "client", "service",
    "method", "path", "peer_node", "user_id", "purpose", "subject", "request_hash",
    "request_body_sha256", "request_signature", "response_body_sha256", "response_signature",
    "status", "error_code", "consent", "prev_hash",
}  # fmt: skip


def test_the_audit_chain() -> None:
    rows, previous = load("audit_chain.json")["rows"], "0" * 64
    assert len(rows) == 3
    assert [row["format"] for row in rows] == [None, 2, 2]  # a node upgraded after row 1
    for seq, row in enumerate(rows, start=1):
        assert set(row) == {*ROW_FIELDS, "format", "entry_hash"}
        assert row["seq"] == seq
        assert row["prev_hash"] == previous
        # Format 1 (null) hashes the 23 fields; format 2 also the format itself.
        hashed = ROW_FIELDS if row["format"] is None else {*ROW_FIELDS, "format"}
        fields = {name: row[name] for name in hashed}
        body = previous.encode("ascii") + b"\x00" + canonical(fields)
        assert row["entry_hash"] == hashlib.sha256(body).hexdigest()
        if row["consent"] is not None and row["format"] == 2:
            assert row["consent"].encode() == canonical(json.loads(row["consent"]))
        previous = row["entry_hash"]
    # The exchange's row keeps both signed tokens and the request hash.
    request, response = load("request.json"), load("response.json")
    assert rows[0]["request_signature"] == request["token"]
    assert rows[0]["response_signature"] == response["token"]
    assert rows[0]["request_hash"] == request["request_hash"]


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1, as docs/formats.md states it."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    left, right = merkle_root(leaves[:split]), merkle_root(leaves[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_the_checkpoint_signs_the_chains_merkle_root() -> None:
    rows, vector = load("audit_chain.json")["rows"], load("checkpoint.json")
    root = merkle_root([bytes.fromhex(row["entry_hash"]) for row in rows])
    assert vector["root"] == root.hex()
    payload = json.loads(unb64url(vector["token"].split(".")[1]))
    assert payload["format"] == "renkei-checkpoint/1"
    assert (payload["node"], payload["tree_size"], payload["root"]) == (
        rows[0]["node_id"], len(rows), root.hex()
    )
    assert datetime.fromisoformat(payload["issued_at"]).utcoffset() == UTC.utcoffset(None)
    check_jws(vector["token"], typ="renkei-checkpoint+jws", signer=certificate("provider-auth.pem"),
              header={"kid", "x5c"}, payload=payload)


def test_the_consent_receipt() -> None:
    vector = load("receipt.json")
    assert vector["receipt"]["version"] == "KI-CR-v1.1.0"
    check_jws(vector["token"], typ="renkei-consent-receipt+jws",
              signer=certificate("provider-sign.pem"), header={"kid", "x5c"},
              payload=vector["receipt"])


def test_a_changed_byte_is_caught() -> None:
    # Guards the checks above: they compare, so a one-character change must fail them.
    vector = load("request.json")
    changed = {**vector["description"], "method": "GET"}
    with pytest.raises(AssertionError):
        check_jws(vector["token"], typ="renkei-request+jws",
                  signer=certificate("consumer-sign.pem"), header={"x5c"}, payload=changed)
