"""Cost of signing and verifying one message signature (``gateway.signing``).

    .venv/bin/python -m bench.jws_verify

For each accepted key type: the mean time of ``verify_message`` on a request
description (signer certificate already validated and cached, no status check,
as on a busy node), and of ``MessageSigner.sign``; best of five runs.
"""

from __future__ import annotations

import tempfile
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId
from certs.keys import KeyAlgorithm, generate_key
from certs.profiles import make_csr
from gateway.signing import REQUEST_TYP, CertificateCache, MessageSigner, verify_message

MEMBER = MemberId.parse("RENKEI/GOV/HOSP-A")
DESCRIPTION = {
    "v": 1, "kind": "request", "method": "GET", "path": "/Patient/1",
    "headers": [["accept", "application/json"]], "body_sha256": "0" * 43, "issued_at": 1,
    "destination": "RENKEI/GOV/HOSP-B/ss1",
}  # fmt: skip


def main() -> None:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as directory:
        ca = CertificateAuthority.create(Path(directory) / "ca", instance="RENKEI",
                                         now=now - timedelta(days=1))
        algorithms: tuple[KeyAlgorithm, ...] = ("ec-p256", "ed25519", "rsa-2048")
        for algorithm in algorithms:
            key = generate_key(algorithm)
            cert = ca.issue(make_csr(key, MEMBER, "sign"), profile="sign",
                            now=now - timedelta(hours=1))
            signer = MessageSigner(member=MEMBER, key=key, chain=(cert,))
            token = signer.sign(DESCRIPTION, typ=REQUEST_TYP)
            cache = CertificateCache()

            def verify(token: str = token, cache: CertificateCache = cache) -> None:
                verify_message(token, typ=REQUEST_TYP, expected_member=MEMBER,
                               trust_roots=(ca.certificate,), roots_key=1, now=now, cache=cache)

            def sign(signer: MessageSigner = signer) -> None:
                signer.sign(DESCRIPTION, typ=REQUEST_TYP)

            verify()
            verify_s = min(timeit.repeat(verify, number=2000, repeat=5)) / 2000
            sign_s = min(timeit.repeat(sign, number=500, repeat=5)) / 500
            print(f"{algorithm:9} verify {verify_s * 1e6:7.1f} us   sign {sign_s * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
