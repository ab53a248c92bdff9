"""Everything one node process needs to serve exchanges, built once at start.

There are no singletons: the context is created by :func:`open_node`, passed
to the application factories under a typed ``AppKey`` and closed at the end.
Tests build it with their own clock and settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import structlog
from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.errors import CertificateError
from certs.identifiers import MemberId
from certs.keys import fingerprint, load_certificate, load_certificates, load_private_key
from certs.profiles import node_id_of
from certs.validation import verify_certificate
from gateway.audit.bodies import body_vault_for
from gateway.audit.checkpoints import Checkpointer
from gateway.audit.integrity import ChainCheck
from gateway.audit.service import check_chain_at_start, checkpoints_running
from gateway.audit.writer import AuditWriter
from gateway.bootstrap import seed_policy_file, seed_services
from gateway.broker.convert.contexts import bundled_context, bundled_context_urls
from gateway.broker.ldcontext import ContextCache, ContextDocuments
from gateway.broker.service import EntityService
from gateway.broker.store import EntityStore
from gateway.broker.views import NgsiLdApi
from gateway.client_auth import (
    ClientAuthSnapshot,
    ClientPortUnprotected,
    ConnectionType,
    check_client_port_protected,
)
from gateway.client_auth import default_connection_type as client_default_type
from gateway.client_auth_store import ClientAuthState, ClientAuthStore
from gateway.client_tls import client_tls_context, trust_registered
from gateway.confclient import ConfigurationClient
from gateway.db import Base, create_engine
from gateway.errors import PeerAuthenticationFailed, TimestampingFailed
from gateway.peer_connector import PinnedConnector, Pins
from gateway.rejections import PEER_TLS, RejectionLog, tls_reason
from gateway.replay import ReplayGuard
from gateway.services import ServiceSnapshot, ServiceState, ServiceStore
from gateway.settings import NodeSettings
from gateway.signing import CertificateCache, MessageSigner
from gateway.status import StatusService
from gateway.tls import client_context, on_handshake_failure, server_context, trust_bundle
from gateway.tokens import ClientTokens
from member_registry.globalconf import GlobalConf, Node
from policies.filter import FilterLimits
from policies.store import PolicyStore

__all__ = ["Clock", "NodeContext", "open_node", "utcnow"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _PeerCheck:
    node: Node
    certificate: x509.Certificate
    validated_at: float


@dataclass
class NodeContext:
    settings: NodeSettings
    clock: Clock
    engine: AsyncEngine
    conf: ConfigurationClient
    audit: AuditWriter
    replay: ReplayGuard
    policy: PolicyStore
    signers: dict[MemberId, MessageSigner]
    auth_certificate: x509.Certificate
    server_ssl: ssl.SSLContext
    cert_cache: CertificateCache = field(default_factory=CertificateCache)
    rejections: RejectionLog = field(default_factory=RejectionLog)
    chain_check: ChainCheck = field(default_factory=ChainCheck)
    filter_limits: FilterLimits = field(default_factory=FilterLimits)
    status: StatusService | None = None
    checkpointer: Checkpointer | None = None
    # Who may call the client port (gateway/client_port.py); None proves nobody.
    client_auth: ClientAuthState | None = None
    client_tokens: ClientTokens | None = None
    client_default: ConnectionType = ConnectionType.HTTPS
    client_ssl: ssl.SSLContext | None = None
    # The services this node provides (gateway/services.py), reloaded when they change.
    services: ServiceState | None = None
    # The NGSI-LD API over this node's entity store (gateway/broker/).
    ngsi_ld: NgsiLdApi | None = None
    # Told when a client changed its entities (its registration may have changed).
    entity_listeners: list[Callable[[], None]] = field(default_factory=list)
    _peer_session: aiohttp.ClientSession | None = None
    backend_session: aiohttp.ClientSession | None = None
    _roots_key: int = 0
    _roots: tuple[x509.Certificate, ...] = ()
    _peer_checks: dict[bytes, _PeerCheck] = field(default_factory=dict)

    def on_services_change(self, callback: Callable[[ServiceSnapshot], None]) -> None:
        if self.services is not None:
            self.services.on_change(callback)

    def service_snapshot(self) -> ServiceSnapshot:
        if self.services is None:
            raise RuntimeError("services not loaded")
        return self.services.current

    @property
    def node_id(self) -> str:
        return str(self.settings.node_id)

    def trust(self, conf: GlobalConf) -> tuple[tuple[x509.Certificate, ...], int]:
        """The trust roots of ``conf`` and a key that changes when they change."""
        roots = conf.trust_roots()
        if roots != self._roots:
            self._roots = roots
            self._roots_key = hash(tuple(fingerprint(root) for root in roots))
            self._peer_checks.clear()
        return self._roots, self._roots_key

    def certificate_status(self) -> StatusService:
        if self.status is None:
            raise RuntimeError("certificate status not set up")
        return self.status

    def timestamping(self, now: datetime) -> dict[str, object]:
        """Time-stamping state; past the grace period the node stops exchanging."""
        since = self.checkpointer.timestamping_failing_since if self.checkpointer else None
        if since is None:
            return {"ok": True}
        failing_s = (now - since).total_seconds()
        grace_s = self.settings.audit_timestamp_grace_s
        return {"ok": failing_s <= grace_s, "failing_for_s": failing_s, "grace_s": grace_s}

    def check_timestamping(self, now: datetime) -> None:
        state = self.timestamping(now)
        if not state["ok"]:
            raise TimestampingFailed(
                f"audit checkpoints have not been time-stamped for {state['failing_for_s']:.0f} s,"
                f" beyond the grace period of {state['grace_s']:.0f} s"
            )

    def peer_session(self) -> aiohttp.ClientSession:
        if self._peer_session is None:
            raise RuntimeError("peer session not open")
        return self._peer_session

    def on_conf_change(self, conf: GlobalConf) -> None:
        """New trust roots reach the TLS contexts (new handshakes use them)."""
        self.certificate_status().configure(conf)
        cadata = trust_bundle(conf.trust_roots())
        if cadata:
            self.server_ssl.load_verify_locations(cadata=cadata)
        old = self._peer_session
        self._peer_session = _peer_session(self.settings, cadata, conf)
        if old is not None:
            # Close the old pool once in-flight exchanges have had time to end.
            asyncio.get_running_loop().call_later(
                self.settings.peer_timeout_s, lambda: asyncio.ensure_future(old.close())
            )

    def authenticate_peer(
        self, der: bytes | None, conf: GlobalConf, now: datetime, staple: bytes | None
    ) -> Node:
        """The node whose registered auth certificate the TLS peer presented.

        ``staple`` is the peer's stapled OCSP response for that certificate.
        """
        if der is None:
            raise PeerAuthenticationFailed("the peer presented no certificate")
        roots, _ = self.trust(conf)
        cached = self._peer_checks.get(der)
        if cached is not None and now.timestamp() - cached.validated_at < 60:
            node = conf.node(cached.node.id)
            if node is not None and cached.node.auth_cert_sha256 == node.auth_cert_sha256:
                self.certificate_status().check_peer(
                    cached.certificate, staple, now=now, side="serverproxy"
                )
                return node
        cert = x509.load_der_x509_certificate(der)
        node = conf.node_by_fingerprint(fingerprint(cert))
        if node is None:
            raise PeerAuthenticationFailed(
                "the peer's certificate is not registered for any node"
            )
        try:
            verify_certificate(cert, trust_roots=roots, now=now, profile="auth")
            named = node_id_of(cert)
        except CertificateError as exc:
            raise PeerAuthenticationFailed(f"peer certificate refused: {exc}") from exc
        if named != node.id:
            raise PeerAuthenticationFailed(
                f"certificate of {named} is registered for {node.id}"
            )
        self.certificate_status().check_peer(cert, staple, now=now, side="serverproxy")
        self._peer_checks[der] = _PeerCheck(
            node=node, certificate=cert, validated_at=now.timestamp()
        )
        return node


def _pins_of(conf: GlobalConf | None) -> Pins:
    table: dict[tuple[str, int], frozenset[str]] = {}
    for node in conf.nodes if conf is not None else ():
        key = (node.address.strip("[]"), node.peer_port)
        table[key] = table.get(key, frozenset()) | frozenset(node.auth_cert_sha256)
    return lambda host, port: table.get((host, port), frozenset())


def _peer_session(
    settings: NodeSettings, cadata: str, conf: GlobalConf | None = None
) -> aiohttp.ClientSession:
    context = client_context(settings.auth_certificate, settings.auth_key, cadata)
    connector = PinnedConnector(
        _pins_of(conf), ssl=context, limit=0, limit_per_host=256,
        # Below the peers' idle deadline (limits.idle_timeout_s, 10 s by default),
        # so this side closes an idle connection before the peer does.
        keepalive_timeout=8,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
    )


def _load_signers(settings: NodeSettings) -> dict[MemberId, MessageSigner]:
    signers = {}
    for entry in settings.sign_keys:
        chain = load_certificates(entry.certificate)
        signers[entry.member] = MessageSigner(
            member=entry.member, key=load_private_key(entry.key), chain=tuple(chain)
        )
    return signers


@contextlib.asynccontextmanager
async def open_node(
    settings: NodeSettings, *, clock: Clock = utcnow
) -> AsyncIterator[NodeContext]:
    """Open the database, the audit writer and the sessions; close them all on exit."""
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    policy = PolicyStore(engine)
    await policy.create_schema()
    client_store = ClientAuthStore(engine)
    first = await client_store.snapshot()
    try:
        # A node of several members does not serve an unauthenticated client port.
        check_client_port_protected(settings, first)
    except ClientPortUnprotected:
        await engine.dispose()
        raise
    client_ssl = (
        client_tls_context(settings.client_tls.certificate, settings.client_tls.key, first)
        if settings.client_tls is not None
        else None
    )

    def trust_new_certificates(snapshot: ClientAuthSnapshot) -> None:
        if client_ssl is not None:
            trust_registered(client_ssl, snapshot)

    client_state = ClientAuthState(client_store, on_change=trust_new_certificates)
    await client_state.reload()
    if settings.policy_file is not None:
        # The node's initial policy, once; later starts never overwrite the database.
        await seed_policy_file(engine, policy, settings.policy_file, now=clock())
    service_store = ServiceStore(engine)
    # node.toml's [[service]] entries seed the database once, like the policy file.
    await seed_services(engine, service_store, settings.services, now=clock())
    service_state = ServiceState(service_store)
    await service_state.reload()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conf = ConfigurationClient(
        settings.anchor, settings.data_dir / "globalconf.jws", clock=clock,
        max_bytes=settings.limits.max_globalconf_bytes,
    )
    auth_cert = load_certificate(settings.auth_certificate)
    context = NodeContext(
        settings=settings,
        clock=clock,
        engine=engine,
        conf=conf,
        audit=AuditWriter(
            engine,
            str(settings.node_id),
            bodies=body_vault_for(settings),
            # No exchange outlives its peer timeout; a reservation older than this is orphaned.
            stale_reservation_s=settings.peer_timeout_s + 300,
        ),
        replay=ReplayGuard(
            engine,
            retention=timedelta(seconds=settings.request_max_age_s + settings.clock_skew_s),
        ),
        policy=policy,
        signers=_load_signers(settings),
        auth_certificate=auth_cert,
        server_ssl=server_context(settings.auth_certificate, settings.auth_key, ""),
        client_auth=client_state,
        client_tokens=ClientTokens.from_key_file(settings.token_key, node_id=str(settings.node_id)),
        client_default=client_default_type(settings),
        client_ssl=client_ssl,
        services=service_state,
    )
    documents = ContextDocuments()
    for url in bundled_context_urls():
        documents.pin(url, bundled_context(url))
    context.ngsi_ld = NgsiLdApi(
        EntityService(EntityStore(engine), clock), ContextCache(documents)
    )
    on_handshake_failure(
        context.server_ssl,
        lambda exc: context.rejections.record(PEER_TLS, tls_reason(exc)),
    )
    context._peer_session = _peer_session(settings, "")
    context.backend_session = aiohttp.ClientSession(
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=256),
    )
    context.status = StatusService(
        auth_cert, {member: signer.chain[0] for member, signer in context.signers.items()}
    )
    conf.on_change(context.on_conf_change)
    status_task: asyncio.Task[None] | None = None
    client_auth_task = asyncio.create_task(client_state.run(), name="client-auth-reload")
    services_task = asyncio.create_task(service_state.run(), name="services-reload")
    try:
        # Before any row is appended: the chain must be the one last witnessed.
        context.chain_check = await check_chain_at_start(settings, engine)
        if context.chain_check.ok:
            await context.audit.start()
        await conf.start()
        async with aiohttp.ClientSession() as session:
            # Staples before the first exchange, so a fresh node is ready at once.
            await context.status.refresh(session, now=clock())
        status_task = asyncio.create_task(context.status.run(clock), name="ocsp-staples")
        async with checkpoints_running(
            settings, engine, lambda: conf.current(clock()), clock
        ) as checkpointer:
            context.checkpointer = checkpointer
            yield context
    finally:
        for task in (client_auth_task, services_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if status_task is not None:
            status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status_task
        await conf.stop()
        await context.audit.stop()
        if context._peer_session is not None:
            await context._peer_session.close()
        await context.backend_session.close()
        await engine.dispose()
