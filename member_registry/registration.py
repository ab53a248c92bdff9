"""Node registration: pending auth-certificate requests, their approval and the auto-approve policy.

``submit`` verifies a signed request (``registration_request``) against the registry's
trusted CAs, requires it to be fresh, its nonce unused, the member known and the auth
certificate not yet listed, and stores it as ``pending`` — or approves it at once when
the auto-approve policy covers the node's member. ``approve`` verifies the stored
signatures and certificates again at approval time (a certificate may have expired, or
a CA been removed, while the request waited) and then, in one transaction, adds the node
if it is new (or updates its address and peer port), lists the auth certificate, creates
missing subsystems of the member and hosts them on the node. The next published global
configuration contains the result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from certs import jws
from certs.identifiers import IdentifierError, MemberId, NodeId, SubsystemId
from member_registry._certificates import certificate_from_pem, certificate_to_pem, fingerprint
from member_registry._strict_json import format_time
from member_registry.errors import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    RegistrationDecided,
    RegistrationIdentityMismatch,
    RegistrationReplayed,
    RegistrationUnknownMember,
    RegistryError,
    ValidationError,
)
from member_registry.models import (
    MemberRow,
    NodeAuthCertificateRow,
    NodeRow,
    NodeSubsystemRow,
    RegistrationRow,
    SubsystemRow,
    TrustedCaRow,
)
from member_registry.registration_request import (
    MAX_REQUEST_AGE,
    POP_TYP,
    RegistrationRequest,
    SignedRegistration,
    VerifiedRegistration,
    check_fresh,
    verify_registration,
)

__all__ = [
    "AUTO_APPROVER",
    "AutoApprovePolicy",
    "Registration",
    "RegistrationService",
    "RegistrationStatus",
    "parse_status",
]

RegistrationStatus = Literal["pending", "approved", "rejected"]
STATUSES: tuple[RegistrationStatus, ...] = ("pending", "approved", "rejected")
AUTO_APPROVER = "auto-approve"
_EVERYONE = "*"


@dataclass(frozen=True)
class AutoApprovePolicy:
    """Which members' registrations are approved without an admin (none by default)."""

    members: frozenset[MemberId] = frozenset()
    everyone: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AutoApprovePolicy:
        """From the ``auto_approve_members`` setting: member ids, or ``"*"`` for all."""
        members = set()
        everyone = False
        for entry in entries:
            if entry == _EVERYONE:
                everyone = True
                continue
            try:
                members.add(MemberId.parse(entry))
            except IdentifierError as exc:
                raise ConfigurationError(f"auto_approve_members: {exc}") from exc
        return cls(frozenset(members), everyone)

    def approves(self, member: MemberId) -> bool:
        return self.everyone or member in self.members


@dataclass(frozen=True)
class Registration:
    """A stored registration request and what became of it."""

    id: int
    status: RegistrationStatus
    request: RegistrationRequest
    auth_fingerprint: str
    received_at: datetime
    decided_at: datetime | None
    decided_by: str | None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "node": str(self.request.node),
            "address": self.request.address,
            "peer_port": self.request.peer_port,
            "subsystems": [str(s) for s in self.request.subsystems],
            "auth_fingerprint": self.auth_fingerprint,
            "issued_at": format_time(self.request.issued_at),
            "received_at": format_time(self.received_at),
            "decided_at": None if self.decided_at is None else format_time(self.decided_at),
            "decided_by": self.decided_by,
        }


class RegistrationService:
    """Registration requests of nodes, kept in the registry's database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        instance: str,
        policy: AutoApprovePolicy | None = None,
        max_age: timedelta = MAX_REQUEST_AGE,
    ) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._instance = instance
        self._policy = policy or AutoApprovePolicy()
        self._max_age = max_age

    async def submit(self, signed: SignedRegistration, *, now: datetime) -> Registration:
        """Verify and store a request; approve it at once if the policy says so."""
        async with self._transaction() as session:
            verified = verify_registration(signed, trust_roots=await _trust_roots(session),
                                           now=now)
            request = verified.request
            check_fresh(request, now=now, max_age=self._max_age)
            if request.node.instance != self._instance:
                raise RegistrationIdentityMismatch(
                    f"node {request.node} is not in instance {self._instance}")
            if await session.get(MemberRow, str(request.node.member)) is None:
                raise RegistrationUnknownMember(
                    f"member {request.node.member} is not a member of the federation")
            used = await session.scalar(
                select(RegistrationRow.id).where(RegistrationRow.nonce == request.nonce))
            if used is not None:
                raise RegistrationReplayed("this registration request was received before")
            sha256 = fingerprint(request.auth_certificate)
            await _check_not_listed(session, sha256)
            row = RegistrationRow(
                nonce=request.nonce, status="pending", node_id=str(request.node),
                auth_fingerprint=sha256, received_at=now,
                proof_of_possession=signed.proof_of_possession,
                member_consent=signed.member_consent)
            session.add(row)
            await session.flush()
            if self._policy.approves(request.node.member):
                await _apply(session, verified)
                _decide(row, "approved", now, AUTO_APPROVER)
            return _registration(row)

    async def list(self, status: RegistrationStatus | None = None) -> tuple[Registration, ...]:
        async with self._session() as session:
            query = select(RegistrationRow).order_by(RegistrationRow.id)
            if status is not None:
                query = query.where(RegistrationRow.status == status)
            return tuple(_registration(row) for row in await session.scalars(query))

    async def get(self, registration_id: int) -> Registration:
        async with self._session() as session:
            return _registration(await _row(session, registration_id))

    async def approve(self, registration_id: int, *, now: datetime,
                      by: str = "admin") -> Registration:
        """Re-verify a pending request at ``now`` and add what it asks for."""
        async with self._transaction() as session:
            row = await _pending(session, registration_id)
            signed = SignedRegistration(row.proof_of_possession, row.member_consent)
            verified = verify_registration(signed, trust_roots=await _trust_roots(session),
                                           now=now)
            await _apply(session, verified)
            _decide(row, "approved", now, by)
            return _registration(row)

    async def reject(self, registration_id: int, *, now: datetime,
                     by: str = "admin") -> Registration:
        async with self._transaction() as session:
            row = await _pending(session, registration_id)
            _decide(row, "rejected", now, by)
            return _registration(row)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self._translated(), self._sessions() as session:
            yield session

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._translated(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except IntegrityError as exc:
            # A concurrent submission of the same nonce or certificate won the race.
            raise AlreadyExists("the request conflicts with the registry's current data") from exc
        except SQLAlchemyError as exc:
            raise RegistryError(f"database error: {type(exc).__name__}") from exc


# -- internals ----------------------------------------------------------------------------


async def _trust_roots(session: AsyncSession) -> list[x509.Certificate]:
    rows = await session.scalars(select(TrustedCaRow).order_by(TrustedCaRow.fingerprint))
    return [certificate_from_pem(row.pem) for row in rows]


async def _check_not_listed(session: AsyncSession, sha256: str) -> None:
    holder = await session.get(NodeAuthCertificateRow, sha256)
    if holder is not None:
        raise AlreadyExists(
            f"auth certificate {sha256} is already registered for node {holder.node_id}")


async def _row(session: AsyncSession, registration_id: int) -> RegistrationRow:
    row = await session.get(RegistrationRow, registration_id)
    if row is None:
        raise NotFound(f"registration {registration_id} does not exist")
    return row


async def _pending(session: AsyncSession, registration_id: int) -> RegistrationRow:
    row = await _row(session, registration_id)
    if row.status != "pending":
        raise RegistrationDecided(f"registration {registration_id} is {row.status} already")
    return row


def _decide(row: RegistrationRow, status: RegistrationStatus, now: datetime, by: str) -> None:
    row.status = status
    row.decided_at = now
    row.decided_by = by


async def _apply(session: AsyncSession, verified: VerifiedRegistration) -> None:
    """Add the node (or update its address), its auth certificate and hosted subsystems."""
    request = verified.request
    node_id, member_id = str(request.node), str(request.node.member)
    if await session.get(MemberRow, member_id) is None:
        raise RegistrationUnknownMember(f"member {member_id} is not a member of the federation")
    node = await session.get(NodeRow, node_id)
    if node is None:
        session.add(NodeRow(id=node_id, member_id=member_id, address=request.address,
                            peer_port=request.peer_port))
    else:
        node.address, node.peer_port = request.address, request.peer_port
    sha256 = fingerprint(request.auth_certificate)
    await _check_not_listed(session, sha256)
    session.add(NodeAuthCertificateRow(fingerprint=sha256, node_id=node_id,
                                       pem=certificate_to_pem(request.auth_certificate)))
    for subsystem in request.subsystems:
        await _host(session, request.node, subsystem)
    await session.flush()


async def _host(session: AsyncSession, node: NodeId, subsystem: SubsystemId) -> None:
    if await session.get(SubsystemRow, str(subsystem)) is None:
        session.add(SubsystemRow(id=str(subsystem), member_id=str(subsystem.member)))
    if await session.get(NodeSubsystemRow, (str(node), str(subsystem))) is None:
        session.add(NodeSubsystemRow(node_id=str(node), subsystem_id=str(subsystem)))


def _registration(row: RegistrationRow) -> Registration:
    # Only verified requests are ever stored, so reading the payload back needs no key.
    try:
        stored = jws.parse(row.proof_of_possession, typ=POP_TYP, header={"x5c"})
        request = RegistrationRequest.from_json_dict(stored.unverified_payload())
    except (jws.SignatureInvalid, RegistryError) as exc:
        raise RegistryError(f"stored registration {row.id} is unreadable") from exc
    status = next((s for s in STATUSES if s == row.status), None)
    if status is None:
        raise RegistryError(f"stored registration {row.id} has an unknown status")
    return Registration(id=row.id, status=status, request=request,
                        auth_fingerprint=row.auth_fingerprint, received_at=row.received_at,
                        decided_at=row.decided_at, decided_by=row.decided_by)


def parse_status(text: str | None) -> RegistrationStatus | None:
    """A status filter from a query or command line; ``None`` means all."""
    if text is None or text == "all":
        return None
    for status in STATUSES:
        if status == text:
            return status
    raise ValidationError(f"status must be one of {', '.join(STATUSES)} or all")
