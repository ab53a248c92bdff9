"""Every signed artifact checked by jwcrypto, a JOSE implementation Renkei does not use.

The request, response, checkpoint and consent-receipt vectors come from
tests/vectors/formats/; the witness cosignature is made here by the registry's
own witness code. Each token must verify with the key of the certificate its
header names (``x5c``) or the one the format says signs it, under the algorithm
that key pins, and must stop verifying when one payload byte changes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk
from jwcrypto import jws as jose_jws

from certs import jws as renkei_jws
from member_registry.signing import generate_signing_identity
from member_registry.witness import COSIGNATURE_TYPE, Witness, _Checkpoint

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "formats"


def _certificate(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((VECTORS / name).read_bytes())


def _jwk_of(certificate: x509.Certificate) -> jwk.JWK:
    return jwk.JWK.from_pem(certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _header(token: str) -> dict[str, Any]:
    encoded = token.split(".")[0]
    padded = encoded + "=" * (-len(encoded) % 4)
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return header


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if payload[0] != "A" else "B") + payload[1:]
    return f"{header}.{flipped}.{signature}"


def _jwcrypto_payload(token: str, certificate: x509.Certificate) -> dict[str, Any]:
    header = _header(token)
    if "x5c" in header:  # the header names its signer: it must be the expected certificate
        named = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        assert named == certificate
    verifier = jose_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(_jwk_of(certificate), alg=header["alg"])
    forged = jose_jws.JWS()
    forged.deserialize(_tampered(token))
    with pytest.raises(jose_jws.InvalidJWSSignature):
        forged.verify(_jwk_of(certificate), alg=header["alg"])
    payload: dict[str, Any] = json.loads(verifier.payload)
    return payload


@pytest.mark.parametrize(
    ("vector", "signer", "typ"),
    [
        ("request.json", "consumer-sign.pem", "renkei-request+jws"),
        ("response.json", "provider-sign.pem", "renkei-response+jws"),
        ("checkpoint.json", "provider-auth.pem", "renkei-checkpoint+jws"),
        ("receipt.json", "provider-sign.pem", "renkei-consent-receipt+jws"),
    ],
)
def test_jwcrypto_verifies_each_signed_vector(vector: str, signer: str, typ: str) -> None:
    document = json.loads((VECTORS / vector).read_text(encoding="utf-8"))
    payload = _jwcrypto_payload(document["token"], _certificate(signer))
    assert _header(document["token"])["typ"] == typ
    if "description" in document:
        assert payload == document["description"]
    if vector == "checkpoint.json":
        assert (payload["tree_size"], payload["root"]) == (document["tree_size"],
                                                            document["root"])


def test_jwcrypto_refuses_a_vector_under_another_members_key() -> None:
    request = json.loads((VECTORS / "request.json").read_text(encoding="utf-8"))
    verifier = jose_jws.JWS()
    verifier.deserialize(request["token"])
    with pytest.raises(jose_jws.InvalidJWSSignature):
        verifier.verify(_jwk_of(_certificate("provider-auth.pem")), alg="ES256")


def test_jwcrypto_verifies_a_witness_cosignature() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    key, certificate = generate_signing_identity("EE", now)
    witness = Witness(None, key, certificate)  # type: ignore[arg-type]  # signing needs no database
    checkpoint = _Checkpoint("EE/GOV/70000001/node1", 3, "ab" * 32)
    token = witness._sign(checkpoint, "header.payload.signature", now)
    assert _header(token)["typ"] == COSIGNATURE_TYPE
    payload = _jwcrypto_payload(token, certificate)
    assert (payload["node"], payload["tree_size"], payload["root"]) == (
        checkpoint.node, checkpoint.tree_size, checkpoint.root)
    # Renkei's own verifier agrees with jwcrypto on the same token.
    own = renkei_jws.verify(token, typ=COSIGNATURE_TYPE, trust=renkei_jws.KeyById((certificate,)),
                            now=now)
    assert own.payload == payload
