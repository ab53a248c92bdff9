"""Rebuild the fixed PKI vectors in ``tests/vectors/pki/`` (run from the repository root).

    .venv/bin/python tests/vectors/rebuild_pki.py

Keys are fresh on every run, so the bytes change, but every file keeps its
meaning at the fixed time ``NOW`` (2026-03-01T12:00:00Z), which is what the
tests in ``tests/unit/certs/test_vectors.py`` rely on. No private key is kept.
The OCSP responses' producedAt is the real build time (cryptography sets it);
verification judges them on thisUpdate/nextUpdate.

Files (PEM certificates, DER OCSP responses, a DER time-stamp token):

    ca.pem                  the instance CA "EE Renkei CA" (valid NOW-500d .. +10y)
    auth.pem, sign.pem      good auth (node) and sign (member) certificates
    expired.pem             auth, valid NOW-400d .. NOW-370d
    not_yet_valid.pem       auth, valid from NOW+10d
    wrong_ca.pem            auth issued by wrong_ca_root.pem, a CA with the same name
    wrong_usage.pem         a sign certificate (to be presented as auth)
    revoked.pem             auth, revoked at NOW-1d (keyCompromise); crl.pem lists it
    ocsp_responder.pem      the CA's delegated OCSP responder
    tsa.pem                 the CA's TSA
    ocsp-good.der           auth.pem good, thisUpdate NOW-5min, nextUpdate NOW+55min
    ocsp-revoked.der        revoked.pem revoked
    ocsp-unknown.der        auth.pem unknown
    ocsp-unauthorized.der   auth.pem good, signed by a responder of wrong_ca_root
    ocsp-unauthorized-no-eku.der  auth.pem good, signed with auth.pem's own key (no OCSPSigning)
    ocsp-stale.der          auth.pem good, thisUpdate NOW-2h (older than a 1 h limit)
    ocsp-expired.der        auth.pem good, thisUpdate NOW-30min, nextUpdate NOW-1min
    ocsp-future.der         auth.pem good, thisUpdate NOW+10min
    timestamp.tsr           a token (with certificate) over SHA-256("renkei vector") at NOW-1h
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certs.ca import CertificateAuthority, CertStatus
from certs.identifiers import MemberId, NodeId
from certs.keys import PrivateKey, generate_key, save_certificate
from certs.ocsp import build_ocsp_request
from certs.ocsp_responder import OcspResponder
from certs.profiles import Profile, make_csr
from certs.service_profiles import ServiceProfile
from certs.tsa import TimeStampAuthority
from certs.tsa_client import build_timestamp_request, token_from_reply

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NODE = NodeId("EE", "GOV", "70000001", "node1")
MEMBER = MemberId("EE", "GOV", "70000001")
TIMESTAMPED = b"renkei vector"
OUT = Path(__file__).resolve().parent / "pki"


def issue(
    ca: CertificateAuthority, profile: Profile, *, at: datetime, days: int = 365
) -> tuple[x509.Certificate, PrivateKey]:
    key = generate_key("ec-p256")
    identity: NodeId | MemberId = NODE if profile == "auth" else MEMBER
    certificate = ca.issue(
        make_csr(key, identity, profile), profile=profile, now=at, validity_days=days
    )
    return certificate, key


def ocsp_response(
    *,
    issuer: x509.Certificate,
    cert: x509.Certificate,
    signer: x509.Certificate,
    signer_key: PrivateKey,
    status: CertStatus,
    at: datetime,
    validity: timedelta = timedelta(hours=1),
) -> bytes:
    responder = OcspResponder(
        issuer=issuer,
        responder_certificate=signer,
        responder_key=signer_key,
        status_of=lambda _serial: status,
        validity=validity,
    )
    return responder.respond(build_ocsp_request(cert, issuer), now=at)


def service(
    ca: CertificateAuthority, profile: ServiceProfile, *, at: datetime
) -> tuple[x509.Certificate, PrivateKey]:
    key = generate_key("ec-p256")
    certificate = ca.issue_service_certificate(key.public_key(), profile=profile, now=at)
    return certificate, key


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        ca = CertificateAuthority.create(
            Path(scratch) / "ca", instance="EE", now=NOW - timedelta(days=500)
        )
        other = CertificateAuthority.create(
            Path(scratch) / "other", instance="EE", now=NOW - timedelta(days=500)
        )
        week_ago = NOW - timedelta(days=7)
        auth, auth_key = issue(ca, "auth", at=week_ago)
        sign, _ = issue(ca, "sign", at=week_ago)
        expired, _ = issue(ca, "auth", at=NOW - timedelta(days=400), days=30)
        not_yet_valid, _ = issue(ca, "auth", at=NOW + timedelta(days=10))
        wrong_ca, _ = issue(other, "auth", at=week_ago)
        wrong_usage, _ = issue(ca, "sign", at=week_ago)
        revoked, _ = issue(ca, "auth", at=week_ago)
        revoked_at = NOW - timedelta(days=1)
        ca.revoke(revoked.serial_number, reason="keyCompromise", now=revoked_at)
        crl = ca.build_crl(NOW - timedelta(hours=1), NOW + timedelta(days=7))
        responder, responder_key = service(ca, "ocsp", at=NOW - timedelta(days=30))
        rogue, rogue_key = service(other, "ocsp", at=NOW - timedelta(days=30))
        tsa_cert, tsa_key = service(ca, "tsa", at=NOW - timedelta(days=30))

        certificates = {
            "ca.pem": ca.certificate,
            "auth.pem": auth,
            "sign.pem": sign,
            "expired.pem": expired,
            "not_yet_valid.pem": not_yet_valid,
            "wrong_ca.pem": wrong_ca,
            "wrong_ca_root.pem": other.certificate,
            "wrong_usage.pem": wrong_usage,
            "revoked.pem": revoked,
            "ocsp_responder.pem": responder,
            "tsa.pem": tsa_cert,
        }
        for name, certificate in certificates.items():
            save_certificate(certificate, OUT / name)
        (OUT / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))

        good = CertStatus("good")
        delegated = {"signer": responder, "signer_key": responder_key}
        responses = {
            "ocsp-good.der": dict(
                cert=auth, status=good, at=NOW - timedelta(minutes=5), **delegated
            ),
            "ocsp-revoked.der": dict(
                cert=revoked,
                status=CertStatus("revoked", revoked_at, "keyCompromise"),
                at=NOW - timedelta(minutes=5),
                **delegated,
            ),
            "ocsp-unknown.der": dict(
                cert=auth, status=CertStatus("unknown"), at=NOW - timedelta(minutes=5), **delegated
            ),
            "ocsp-unauthorized.der": dict(
                cert=auth,
                status=good,
                at=NOW - timedelta(minutes=5),
                signer=rogue,
                signer_key=rogue_key,
            ),
            "ocsp-unauthorized-no-eku.der": dict(
                cert=auth,
                status=good,
                at=NOW - timedelta(minutes=5),
                signer=auth,
                signer_key=auth_key,
            ),
            "ocsp-stale.der": dict(
                cert=auth,
                status=good,
                at=NOW - timedelta(hours=2),
                validity=timedelta(hours=4),
                **delegated,
            ),
            "ocsp-expired.der": dict(
                cert=auth,
                status=good,
                at=NOW - timedelta(minutes=30),
                validity=timedelta(minutes=29),
                **delegated,
            ),
            "ocsp-future.der": dict(
                cert=auth, status=good, at=NOW + timedelta(minutes=10), **delegated
            ),
        }
        for name, options in responses.items():
            (OUT / name).write_bytes(ocsp_response(issuer=ca.certificate, **options))  # type: ignore[arg-type]

        tsa = TimeStampAuthority(tsa_cert, tsa_key)
        hasher = hashes.Hash(hashes.SHA256())
        hasher.update(TIMESTAMPED)
        digest = hasher.finalize()
        request = build_timestamp_request(digest, nonce=1, hash_algorithm="sha256")
        reply = tsa.respond(request, now=NOW - timedelta(hours=1), serial=1)
        (OUT / "timestamp.tsr").write_bytes(token_from_reply(reply, data_digest=digest, nonce=1))
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")


if __name__ == "__main__":
    main()
