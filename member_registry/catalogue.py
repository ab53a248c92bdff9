"""The API catalogue: what every node publishes about its services.

A node pushes its catalogue document periodically to ``POST /catalogue/publish``
as a compact JWS (the recipe of ``certs.jws``, ``typ`` ``renkei-catalogue+jwt``)
signed with its **auth key**, with its auth certificate in ``x5c``. The registry accepts it only
if that certificate's SHA-256 is registered for the node named in the payload,
the certificate is within its validity, the document is fresh, and every
service belongs to a subsystem the node hosts. No token has to be handed out:
the node's registered auth certificate is its credential. A publication
replaces everything the node published before, so the catalogue stays current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from sqlalchemy import Column, MetaData, String, Table, Text, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from certs import jws
from certs.identifiers import IdentifierError, NodeId, ServiceId
from certs.keys import PrivateKey, fingerprint
from member_registry.errors import RegistryError
from member_registry.globalconf import Node

__all__ = [
    "CATALOGUE_TYP",
    "MAX_AGE_S",
    "Catalogue",
    "CatalogueEntry",
    "CatalogueRefused",
    "catalogue_table",
    "sign_publication",
    "verify_publication",
]

CATALOGUE_TYP = "renkei-catalogue+jwt"
MAX_AGE_S = 300
MAX_SERVICES = 1000


class CatalogueRefused(RegistryError):
    """A catalogue publication was refused (bad signature, unknown node, stale, malformed)."""

    code = "registry.catalogue_refused"


def catalogue_table(metadata: MetaData) -> Table:
    return Table(
        "registry_catalogue",
        metadata,
        Column("service_id", String(1400), primary_key=True),
        Column("node_id", String(1279), nullable=False, index=True),
        Column("title", String(255), nullable=False),
        Column("description", Text, nullable=False),
        Column("declaration", Text, nullable=True),
        Column("openapi", Text, nullable=True),
        Column("published_at", String(40), nullable=False),
    )


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    service: ServiceId
    node: NodeId
    title: str
    description: str
    declaration: dict[str, Any] | None
    openapi: dict[str, Any] | None
    published_at: datetime

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "service": str(self.service),
            "node": str(self.node),
            "title": self.title,
            "description": self.description,
            "declaration": self.declaration,
            "openapi": self.openapi,
            "published_at": self.published_at.isoformat().replace("+00:00", "Z"),
        }


def sign_publication(
    key: PrivateKey,
    certificate: x509.Certificate,
    node: NodeId,
    services: list[dict[str, Any]],
    now: datetime,
) -> str:
    """The node's side: its catalogue document, signed with its auth key.

    Raises ``CatalogueRefused`` for a document with no canonical form (an integer
    beyond 2^53, NaN).
    """
    payload = {"v": 1, "node": str(node), "issued_at": int(now.timestamp()), "services": services}
    try:
        return jws.sign(payload, key, typ=CATALOGUE_TYP,
                        header={"x5c": [jws.certificate_der_base64(certificate)]})
    except ValueError as exc:
        raise CatalogueRefused(f"the catalogue cannot be signed: {exc}") from exc


def verify_publication(
    token: str, nodes: tuple[Node, ...], now: datetime
) -> tuple[NodeId, list[CatalogueEntry]]:
    """The registry's side: check a publication; return the node and its entries."""
    try:
        signed = jws.parse(token, typ=CATALOGUE_TYP, header={"x5c"})
        chain = jws.x5c_certificates(signed.header)
        if len(chain) != 1:
            raise CatalogueRefused("x5c must hold exactly the node's auth certificate")
        certificate = chain[0]
        # Whose certificate this is, is checked below against the configuration.
        claims = signed.verify(jws.PinnedKey(certificate), now=now).payload
    except jws.SignatureInvalid as exc:
        raise CatalogueRefused(f"the publication does not verify: {exc}") from exc
    try:
        node_id = NodeId.parse(str(claims.get("node")))
    except IdentifierError as exc:
        raise CatalogueRefused("the publication names no valid node") from exc
    node = next((n for n in nodes if n.id == node_id), None)
    if node is None or fingerprint(certificate) not in node.auth_cert_sha256:
        raise CatalogueRefused(f"the certificate is not registered for {node_id}")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise CatalogueRefused("the node's auth certificate is not valid now")
    issued = claims.get("issued_at")
    if (
        claims.get("v") != 1
        or not isinstance(issued, int)
        or abs(now.timestamp() - issued) > MAX_AGE_S
    ):
        raise CatalogueRefused("the publication is stale, from the future or of another version")
    services = claims.get("services")
    if not isinstance(services, list) or len(services) > MAX_SERVICES:
        raise CatalogueRefused("services must be a list")
    return node_id, [_entry(item, node, now) for item in services]


def _entry(item: Any, node: Node, now: datetime) -> CatalogueEntry:
    if not isinstance(item, dict):
        raise CatalogueRefused("each service must be an object")
    try:
        service = ServiceId.parse(str(item.get("id")))
    except IdentifierError as exc:
        raise CatalogueRefused(f"bad service id: {exc}") from exc
    if service.subsystem not in node.subsystems:
        raise CatalogueRefused(f"{service.subsystem} is not hosted on {node.id}")
    title, description = item.get("title", service.service_code), item.get("description", "")
    declaration, openapi = item.get("declaration"), item.get("openapi")
    if not isinstance(title, str) or not isinstance(description, str):
        raise CatalogueRefused("title and description must be strings")
    for value in (declaration, openapi):
        if value is not None and not isinstance(value, dict):
            raise CatalogueRefused("declaration and openapi must be objects")
    return CatalogueEntry(service, node.id, title[:255], description, declaration, openapi, now)


class Catalogue:
    """The stored catalogue: replace a node's entries, search, list."""

    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        self._engine = engine
        self._table = table

    async def replace(self, node: NodeId, entries: list[CatalogueEntry]) -> None:
        table = self._table
        rows = [
            {
                "service_id": str(e.service),
                "node_id": str(e.node),
                "title": e.title,
                "description": e.description,
                "declaration": None if e.declaration is None else json.dumps(e.declaration),
                "openapi": None if e.openapi is None else json.dumps(e.openapi),
                "published_at": e.published_at.astimezone(UTC).isoformat(),
            }
            for e in entries
        ]
        try:
            async with self._engine.begin() as connection:
                await connection.execute(delete(table).where(table.c.node_id == str(node)))
                ids = [r["service_id"] for r in rows]
                if ids:
                    # A service moved from another node: the latest publisher owns it.
                    await connection.execute(delete(table).where(table.c.service_id.in_(ids)))
                    await connection.execute(insert(table), rows)
        except SQLAlchemyError as exc:
            raise RegistryError(
                f"the catalogue cannot be stored: {exc.__class__.__name__}"
            ) from exc

    async def entries(self) -> list[CatalogueEntry]:
        async with self._engine.connect() as connection:
            rows = (
                (await connection.execute(select(self._table).order_by(self._table.c.service_id)))
                .mappings()
                .all()
            )
        return [
            CatalogueEntry(
                service=ServiceId.parse(row["service_id"]),
                node=NodeId.parse(row["node_id"]),
                title=row["title"],
                description=row["description"],
                declaration=None if row["declaration"] is None else json.loads(row["declaration"]),
                openapi=None if row["openapi"] is None else json.loads(row["openapi"]),
                published_at=datetime.fromisoformat(row["published_at"]),
            )
            for row in rows
        ]

    async def search(self, query: str) -> list[CatalogueEntry]:
        """Entries whose id, title or description contain every word of ``query``."""
        words = [w.casefold() for w in query.split()]
        found = []
        for entry in await self.entries():
            text = f"{entry.service} {entry.title} {entry.description}".casefold()
            if all(w in text for w in words):
                found.append(entry)
        return found
