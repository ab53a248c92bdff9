"""Rebuild the format vectors in ``tests/vectors/formats/`` (run from the repository root).

    .venv/bin/python tests/vectors/rebuild_formats.py

Each vector is made by the product's own code (descriptions, message signer,
audit writer, checkpoint signer, consent receipts). Keys are fresh on every run
and ECDSA signatures are randomised, so the bytes change, but every file keeps
its meaning at the fixed time ``NOW`` (2026-03-01T12:00:00Z). No private key is
kept. ``tests/unit/test_format_vectors.py`` reproduces every vector from the
format descriptions in ``docs/formats.md`` alone, without the product's code;
``tests/vectors/formats/README.md`` says what each file holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId, ServiceId, SubsystemId
from certs.keys import PrivateKey, generate_key, save_certificate
from certs.profiles import make_csr
from gateway.audit.checkpoints import CheckpointSigner
from gateway.audit.hashing import GENESIS_HASH, entry_hash
from gateway.audit.models import HASHED_FIELDS, AuditEntry
from gateway.audit.writer import row_fields
from gateway.descriptions import request_description, response_description
from gateway.protocol import parse_exchange_request
from gateway.signing import REQUEST_TYP, RESPONSE_TYP, MessageSigner, request_hash
from member_registry.merkle import leaf_hash, root_from_leaf_hashes
from policies.consent import Consent
from policies.declarations import ServiceDeclaration
from policies.receipts import make_receipt, sign_receipt

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INSTANCE = "EE"
CONSUMER = MemberId(INSTANCE, "GOV", "70000002")
PROVIDER = MemberId(INSTANCE, "GOV", "70000001")
CONSUMER_NODE = NodeId(INSTANCE, "GOV", "70000002", "node1")
PROVIDER_NODE = NodeId(INSTANCE, "GOV", "70000001", "node1")
CLIENT = "EE/GOV/70000002/clinic"
TARGET = "/r1/EE/GOV/70000001/records/patient/Patient/38001010000?_elements=name"
BODY = b'{"resourceType":"Patient","id":"38001010000","name":[{"family":"Tamm"}]}'
OUT = Path(__file__).resolve().parent / "formats"


def _sha256_b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_json(name: str, document: dict[str, Any]) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    (OUT / name).write_text(text, encoding="utf-8")


def _sign_certificate(ca: CertificateAuthority, key: PrivateKey, member: MemberId) -> Any:
    return ca.issue(make_csr(key, member, "sign"), profile="sign", now=NOW - timedelta(days=1))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        ca = CertificateAuthority.create(Path(directory) / "ca", instance=INSTANCE,
                                         now=NOW - timedelta(days=30))
        build(ca)


def build(ca: CertificateAuthority) -> None:
    consumer_key, provider_key, auth_key = (
        generate_key("ec-p256"), generate_key("ed25519"), generate_key("ec-p256")
    )
    consumer_cert = _sign_certificate(ca, consumer_key, CONSUMER)
    provider_cert = _sign_certificate(ca, provider_key, PROVIDER)
    auth_cert = ca.issue(make_csr(auth_key, PROVIDER_NODE, "auth"), profile="auth",
                         now=NOW - timedelta(days=1))
    for name, cert in (("ca.pem", ca.certificate), ("consumer-sign.pem", consumer_cert),
                       ("provider-sign.pem", provider_cert), ("provider-auth.pem", auth_cert)):
        save_certificate(cert, OUT / name)

    # 1. The request the consumer node signs.
    request = parse_exchange_request(
        "POST", TARGET,
        [("X-Road-Client", CLIENT), ("X-Road-Id", "4a3f1c2e-6d0b-4e8a-9b7c-1f2e3d4c5b6a"),
         ("X-Road-UserId", "EE38001010000"), ("Renkei-Purpose", "treatment"),
         ("Renkei-Subject", "38001010000"), ("Content-Type", "application/fhir+json")],
    )
    issued_at = int(NOW.timestamp())
    request_id = str(uuid.UUID(int=0x0123456789ABCDEF0123456789ABCDEF))
    description = request_description(
        request, request_id=request_id, body_sha256=_sha256_b64url(BODY),
        body_length=len(BODY), issued_at=issued_at, origin=CONSUMER_NODE,
        destination=PROVIDER_NODE,
    )
    consumer = MessageSigner(member=CONSUMER, key=consumer_key, chain=(consumer_cert,))
    request_token = consumer.sign(description, typ=REQUEST_TYP)
    _write_json("request.json", {
        "method": "POST", "target": TARGET, "body": BODY.decode(),
        "description": description, "token": request_token,
        "request_hash": request_hash(request_token),
    })

    # 2. The provider's signed response, bound to that request.
    response_body = b'{"resourceType":"Patient","id":"38001010000"}'
    response = response_description(
        request_id=request_id, request_hash=request_hash(request_token), status=200,
        headers=(("content-type", "application/fhir+json"),),
        body_sha256=_sha256_b64url(response_body), body_length=len(response_body),
        issued_at=issued_at + 1, error=None, withheld=("name",),
        consent_ids=("c0ffee00-0000-4000-8000-000000000001",),
    )
    provider = MessageSigner(member=PROVIDER, key=provider_key, chain=(provider_cert,))
    response_token = provider.sign(response, typ=RESPONSE_TYP)
    _write_json("response.json", {
        "body": response_body.decode(), "description": response, "token": response_token,
    })

    # 3. Three audit rows of the provider node, chained.
    rows, previous = [], GENESIS_HASH
    entries = [
        AuditEntry(role="provider", message_id="4a3f1c2e-6d0b-4e8a-9b7c-1f2e3d4c5b6a",
                   logged_at=NOW + timedelta(seconds=2), request_id=request_id, client=CLIENT,
                   service="EE/GOV/70000001/records/patient", method="POST",
                   path="/Patient/38001010000", peer_node=str(CONSUMER_NODE),
                   user_id="EE38001010000", purpose="treatment", subject="38001010000",
                   request_hash=request_hash(request_token),
                   request_body_sha256=_sha256_b64url(BODY), request_signature=request_token,
                   response_body_sha256=_sha256_b64url(response_body),
                   response_signature=response_token, status=200,
                   consent={"released": ["id", "resourceType"], "withheld": ["name"],
                            "consent_ids": ["c0ffee00-0000-4000-8000-000000000001"]}),
        AuditEntry(role="provider", message_id="msg-2 \u00e9\u5c71", logged_at=NOW + timedelta(
                   seconds=3), client=CLIENT, service="EE/GOV/70000001/records/patient",
                   method="GET", path="/Patient/\u00e9\"\\\n", status=None,
                   error_code="server.serverproxy.access_denied"),
        AuditEntry(role="consumer", message_id="msg-3", logged_at=NOW + timedelta(seconds=4),
                   client=CLIENT, service="EE/GOV/70000001/records/patient", method="GET",
                   path="/Patient/38001010000", status=200,
                   consent={"released": ["Patient.name"], "withheld": ["Patient.\u00e9tat"],
                            "consent_ids": ["c0ffee00-0000-4000-8000-000000000001"]}),
    ]  # fmt: skip
    for seq, entry in enumerate(entries, start=1):
        row = row_fields(entry, node_id=str(PROVIDER_NODE), seq=seq, prev_hash=previous)
        if seq == 1:
            # Written before rows carried a format (rule 1), as a node upgraded mid-chain has.
            row["format"] = None
            row["entry_hash"] = entry_hash(previous, {k: row[k] for k in HASHED_FIELDS})
        rows.append(row)
        previous = row["entry_hash"]
    _write_json("audit_chain.json", {"rows": rows})

    # 4. A checkpoint over those three rows.
    root = root_from_leaf_hashes([leaf_hash(bytes.fromhex(row["entry_hash"])) for row in rows])
    signer = CheckpointSigner(node_id=str(PROVIDER_NODE), key=auth_key, certificate=auth_cert)
    checkpoint = signer.sign(tree_size=len(rows), root=root, issued_at=NOW + timedelta(minutes=1))
    _write_json("checkpoint.json", {"tree_size": len(rows), "root": root.hex(),
                                    "token": checkpoint})

    # 5. A consent receipt by the provider member's sign key.
    service = ServiceId.parse("EE/GOV/70000001/records/patient")
    declaration = ServiceDeclaration(service, media_types=("application/fhir+json",),
                                     fields=("Patient.name", "Patient.birthDate"),
                                     description="Patient records")
    consent = Consent(
        id=uuid.UUID("c0ffee00-0000-4000-8000-000000000001"), subject="38001010000",
        consumer=SubsystemId.parse(CLIENT), service=service, purpose="treatment",
        fields=("Patient.name",), valid_from=NOW, valid_until=NOW + timedelta(days=365),
        granted_at=NOW,
    )
    controller = {
        "piiController": "H\u00f4pital 70000001", "contact": "Data protection officer",
        "address": "1 Hospital Road, Tallinn", "email": "dpo@70000001.example",
        "phone": "+372 600 0000", "jurisdiction": "EE",
        "policyUrl": "https://70000001.example/privacy",
    }
    receipt = make_receipt(consent, declaration, controller, NOW, purpose_text="Treatment")
    _write_json("receipt.json", {"receipt": receipt,
                                 "token": sign_receipt(receipt, provider_key, provider_cert)})


if __name__ == "__main__":
    main()
