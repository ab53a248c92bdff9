"""Shared fixtures: a registry signing identity, a CA certificate and a sample configuration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from registry_samples import (
    CITY,
    EHR,
    HOSP_A,
    NODE1,
    NOW,
    PLANNING,
    TRANSIT,
    make_certificate,
)

from member_registry._certificates import fingerprint
from member_registry.anchor import Anchor
from member_registry.globalconf import (
    GlobalConf,
    GlobalGroup,
    Member,
    Node,
    Settings,
    TrustedCa,
    Tsa,
)
from member_registry.signing import generate_signing_identity


@pytest.fixture(scope="session")
def registry_identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return generate_signing_identity("RENKEI", NOW)


@pytest.fixture(scope="session")
def other_identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return generate_signing_identity("RENKEI", NOW)


@pytest.fixture(scope="session")
def ca_certificate() -> x509.Certificate:
    return make_certificate("RENKEI CA", ca=True)


@pytest.fixture(scope="session")
def auth_certificate() -> x509.Certificate:
    return make_certificate("node1")


@pytest.fixture
def anchor(registry_identity: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]) -> Anchor:
    return Anchor(
        instance="RENKEI",
        generated_at=NOW,
        download_urls=("http://127.0.0.1:8080/globalconf",),
        verification_certificates=(registry_identity[1],),
    )


@pytest.fixture
def sample_conf(
    ca_certificate: x509.Certificate, auth_certificate: x509.Certificate
) -> GlobalConf:
    return GlobalConf(
        instance="RENKEI",
        version=7,
        generated_at=NOW,
        expires_at=NOW + timedelta(minutes=10),
        settings=Settings(),
        trusted_cas=(TrustedCa(ca_certificate, ("http://127.0.0.1:8888",)),),
        tsas=(Tsa("TSA", "http://127.0.0.1:8889", ca_certificate),),
        members=(
            Member(HOSP_A, "Hospital A", (EHR,)),
            Member(CITY, "City", (PLANNING,)),
        ),
        nodes=(Node(NODE1, "127.0.0.1", 5500, (fingerprint(auth_certificate),), (EHR,)),),
        global_groups=(GlobalGroup(TRANSIT, "Transit partners", (PLANNING,)),),
    )
