"""Shared fixtures: a registry signing identity, a CA certificate and a sample configuration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from certs.ca import CertificateAuthority
from member_registry._certificates import fingerprint
from member_registry.anchor import Anchor
from member_registry.database import create_engine
from member_registry.globalconf import (
    GlobalConf,
    GlobalGroup,
    Member,
    Node,
    Settings,
    TrustedCa,
    Tsa,
)
from member_registry.service import RegistryService
from member_registry.signing import generate_signing_identity
from tests.conftest import POSTGRES_SERVER, require_postgres
from tests.unit.member_registry.registry_samples import (
    CITY,
    EHR,
    HOSP_A,
    NODE1,
    NOW,
    PLANNING,
    TRANSIT,
    issue_auth_certificate,
)


@pytest.fixture(scope="session")
def registry_identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return generate_signing_identity("RENKEI", NOW)


@pytest.fixture(scope="session")
def other_identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return generate_signing_identity("RENKEI", NOW)


@pytest.fixture(scope="session")
def instance_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"), instance="RENKEI", now=NOW)


@pytest.fixture(scope="session")
def ca_certificate(instance_ca: CertificateAuthority) -> x509.Certificate:
    return instance_ca.certificate


@pytest.fixture(scope="session")
def auth_certificate(instance_ca: CertificateAuthority) -> x509.Certificate:
    return issue_auth_certificate(instance_ca, NODE1)


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A registry database: SQLite in ``tmp_path``, or a private schema in PostgreSQL."""
    if request.param == "sqlite":
        sqlite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
        yield sqlite
        await sqlite.dispose()
        return
    require_postgres()  # skips when unreachable, fails instead when CI is set
    schema = f"registry_test_{uuid.uuid4().hex}"
    admin = create_async_engine(POSTGRES_SERVER)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    postgres = create_async_engine(
        POSTGRES_SERVER, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        yield postgres
    finally:
        await postgres.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def service(
    engine: AsyncEngine, registry_identity: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
) -> RegistryService:
    registry = RegistryService(engine, registry_identity[0], registry_identity[1], "RENKEI",
                               Settings())
    await registry.create_schema()
    return registry
