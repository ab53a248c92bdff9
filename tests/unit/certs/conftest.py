"""Fixtures for the certs tests: cached keys, a CA in tmp_path, an issuing shortcut."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

import pytest
from certs_helpers import INSTANCE, MEMBER, NODE, NOW, Issuer, KeyFactory
from cryptography import x509

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId
from certs.keys import KeyAlgorithm, PrivateKey, generate_key
from certs.profiles import Profile, make_csr


@pytest.fixture(scope="session")
def key_of() -> KeyFactory:
    """Keys are cached per algorithm: RSA generation is slow and tests only need distinct roles."""
    cache: dict[str, PrivateKey] = {}

    def make(algorithm: str) -> PrivateKey:
        if algorithm not in cache:
            cache[algorithm] = generate_key(cast(KeyAlgorithm, algorithm))
        return cache[algorithm]

    return make


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "ca", instance=INSTANCE, now=NOW)


@pytest.fixture
def issue(ca: CertificateAuthority) -> Issuer:
    """Issue a certificate for a fresh (cached) key through the real CA."""

    def make(
        profile: Profile = "auth",
        *,
        key: PrivateKey | None = None,
        now: datetime = NOW,
        validity_days: int = 365,
    ) -> x509.Certificate:
        identity: NodeId | MemberId = NODE if profile == "auth" else MEMBER
        subject_key = key if key is not None else generate_key("ec-p256")
        csr = make_csr(subject_key, identity, profile)
        return ca.issue(csr, profile=profile, now=now, validity_days=validity_days)

    return make
