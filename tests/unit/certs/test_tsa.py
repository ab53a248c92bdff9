"""The TSA: tokens it issues, requests it rejects, the client, and verify_timestamp_token."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from asn1crypto import algos, cms, tsp
from certs_helpers import NOW, Issuer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pytest_aiohttp import AiohttpServer

from certs import errors
from certs.ca import CertificateAuthority
from certs.keys import generate_key, save_certificate
from certs.timestamps import verify_timestamp_token
from certs.tsa import DEFAULT_POLICY_OID, TimeStampAuthority, TimeStampReply
from certs.tsa_client import build_timestamp_request, request_timestamp, token_from_reply
from certs.tsa_server import create_tsa_app

LATER = NOW + timedelta(hours=1)


def sha256(data: bytes) -> bytes:
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(data)
    return hasher.finalize()


DIGEST = sha256(b"checkpoint 42")


@pytest.fixture
def tsa(ca: CertificateAuthority) -> TimeStampAuthority:
    key = generate_key("ec-p256")
    cert = ca.issue_service_certificate(key.public_key(), profile="tsa", now=NOW)
    return TimeStampAuthority(cert, key)


def stamp(tsa: TimeStampAuthority, digest: bytes = DIGEST, *, nonce: int = 7) -> bytes:
    request = build_timestamp_request(digest, nonce=nonce, hash_algorithm="sha256")
    return token_from_reply(
        tsa.respond(request, now=LATER, serial=99), data_digest=digest, nonce=nonce
    )


def test_tsa_certificate_has_the_critical_time_stamping_usage(tsa: TimeStampAuthority) -> None:
    usage = tsa.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical
    assert list(usage.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]


def test_token_verifies_and_carries_the_request(
    tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    token = stamp(tsa)
    assert (
        verify_timestamp_token(token, digest=DIGEST, trust_roots=[ca.certificate], now=LATER)
        == LATER
    )
    info = tsp.TSTInfo.load(
        cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].contents
    )
    assert info["policy"].dotted == DEFAULT_POLICY_OID
    assert info["nonce"].native == 7
    assert info["serial_number"].native == 99


def test_token_without_certificate_needs_it_given(
    tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "hashed_message": DIGEST,
            },
        }
    ).dump()
    token = token_from_reply(
        tsa.respond(request, now=LATER, serial=1), data_digest=DIGEST, nonce=None
    )
    with pytest.raises(errors.TimestampInvalid, match="neither in the token nor given"):
        verify_timestamp_token(token, digest=DIGEST, trust_roots=[ca.certificate], now=LATER)
    verify_timestamp_token(
        token,
        digest=DIGEST,
        trust_roots=[ca.certificate],
        now=LATER,
        certificates=[tsa.certificate],
    )


@pytest.mark.parametrize(
    ("request_fields", "failure"),
    [
        ({"hash_algorithm": "sha1", "digest": bytes(20)}, "bad_alg"),
        ({"hash_algorithm": "sha256", "digest": bytes(31)}, "bad_data_format"),
        ({"policy": "1.2.3.4"}, "unaccepted_policy"),
    ],
)
def test_requests_that_are_rejected(
    tsa: TimeStampAuthority, request_fields: dict[str, object], failure: str
) -> None:
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": algos.DigestAlgorithm(
                {"algorithm": request_fields.get("hash_algorithm", "sha256")}
            ),
            "hashed_message": request_fields.get("digest", DIGEST),
        },
    }
    if "policy" in request_fields:
        fields["req_policy"] = request_fields["policy"]
    reply = TimeStampReply.load(tsa.respond(tsp.TimeStampReq(fields).dump(), now=LATER, serial=1))
    assert reply["status"]["status"].native == "rejection"
    assert reply["status"]["fail_info"].native == {failure}


def test_malformed_request_is_rejected(tsa: TimeStampAuthority) -> None:
    reply = TimeStampReply.load(tsa.respond(b"\x30\x02\x01\x00", now=LATER, serial=1))
    assert reply["status"]["fail_info"].native == {"bad_data_format"}
    with pytest.raises(errors.TsaError, match="refused"):
        token_from_reply(tsa.respond(b"junk", now=LATER, serial=1), data_digest=DIGEST, nonce=1)


def test_tsa_key_must_fit_its_certificate_and_not_be_ed25519(
    tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    with pytest.raises(errors.TsaError, match="does not match"):
        TimeStampAuthority(tsa.certificate, generate_key("ec-p256"))
    key = generate_key("ed25519")
    cert = ca.issue_service_certificate(key.public_key(), profile="tsa", now=NOW)
    with pytest.raises(errors.TsaError, match="Ed25519"):
        TimeStampAuthority(cert, key)


def test_rsa_tsa_token_verifies(ca: CertificateAuthority, key_of: object) -> None:
    key = generate_key("rsa-2048")
    cert = ca.issue_service_certificate(key.public_key(), profile="tsa", now=NOW)
    token = stamp(TimeStampAuthority(cert, key))
    verify_timestamp_token(token, digest=DIGEST, trust_roots=[ca.certificate], now=LATER)


def test_verify_refuses_another_digest_algorithm_or_root(
    tsa: TimeStampAuthority, ca: CertificateAuthority, tmp_path: Path
) -> None:
    token = stamp(tsa)
    roots = [ca.certificate]
    with pytest.raises(errors.TimestampInvalid, match="another digest"):
        verify_timestamp_token(token, digest=sha256(b"other"), trust_roots=roots, now=LATER)
    with pytest.raises(errors.TimestampInvalid, match="sha384"):
        verify_timestamp_token(
            token, digest=DIGEST, trust_roots=roots, now=LATER, hash_algorithm="sha384"
        )
    with pytest.raises(errors.TimestampInvalid, match="not accepted"):
        verify_timestamp_token(
            token, digest=DIGEST, trust_roots=roots, now=LATER, hash_algorithm="md5"
        )
    with pytest.raises(errors.TimestampInvalid, match="no trust roots"):
        verify_timestamp_token(token, digest=DIGEST, trust_roots=[], now=LATER)
    other = CertificateAuthority.create(tmp_path / "other", instance="EE", now=NOW)
    with pytest.raises(errors.TimestampInvalid, match="not issued by a trusted CA"):
        verify_timestamp_token(token, digest=DIGEST, trust_roots=[other.certificate], now=LATER)


def test_verify_refuses_future_genTime_and_garbage(
    tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    token = stamp(tsa)
    roots = [ca.certificate]
    with pytest.raises(errors.TimestampInvalid, match="future"):
        verify_timestamp_token(
            token, digest=DIGEST, trust_roots=roots, now=LATER - timedelta(minutes=2)
        )
    with pytest.raises(errors.TimestampInvalid, match="malformed"):
        verify_timestamp_token(b"\x30\x00", digest=DIGEST, trust_roots=roots, now=LATER)


def test_verify_refuses_a_tampered_signature(
    tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    token = bytearray(stamp(tsa))
    signer = cms.ContentInfo.load(bytes(token))["content"]["signer_infos"][0]
    signature = signer["signature"].native
    position = bytes(token).index(signature) + 10
    token[position] ^= 0x01
    with pytest.raises(errors.TimestampInvalid, match="signature"):
        verify_timestamp_token(bytes(token), digest=DIGEST, trust_roots=[ca.certificate], now=LATER)


def test_verify_refuses_a_signer_without_the_time_stamping_usage(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    key = generate_key("ec-p256")
    ocsp_cert = ca.issue_service_certificate(key.public_key(), profile="ocsp", now=NOW)
    token = stamp(TimeStampAuthority(ocsp_cert, key))
    with pytest.raises(errors.TimestampInvalid, match="timeStamping"):
        verify_timestamp_token(token, digest=DIGEST, trust_roots=[ca.certificate], now=LATER)


async def test_request_timestamp_through_the_server(
    aiohttp_server: AiohttpServer, tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    server = await aiohttp_server(create_tsa_app(tsa, clock=lambda: LATER))
    url = str(server.make_url("/"))
    async with aiohttp.ClientSession() as session:
        token = await request_timestamp(session, url, DIGEST)
        with pytest.raises(errors.TsaError):
            await request_timestamp(session, url, DIGEST[:20])
        async with session.post(url, data=b"x", headers={"Content-Type": "text/plain"}) as reply:
            assert reply.content_type == "application/timestamp-reply"
            rejected = TimeStampReply.load(await reply.read())
            assert rejected["status"]["status"].native == "rejection"
        with pytest.raises(errors.TsaError, match="cannot reach"):
            await request_timestamp(session, "http://127.0.0.1:9/", DIGEST, timeout_s=2)
    assert (
        verify_timestamp_token(token, digest=DIGEST, trust_roots=[ca.certificate], now=LATER)
        == LATER
    )


def test_openssl_ts_verify_accepts_tokens(
    tmp_path: Path, tsa: TimeStampAuthority, ca: CertificateAuthority
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"checkpoint 42")
    token_file = tmp_path / "token.der"
    token_file.write_bytes(stamp(tsa, sha256(b"checkpoint 42")))
    ca_file = tmp_path / "ca.pem"
    save_certificate(ca.certificate, ca_file)
    result = subprocess.run(
        [
            "openssl", "ts", "-verify", "-token_in", "-in", str(token_file), "-data", str(data),
            "-CAfile", str(ca_file), "-attime", str(int(LATER.timestamp())),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in result.stdout, result.stderr
