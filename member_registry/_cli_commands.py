"""The ``renkei registry`` commands' implementations (member_registry/cli.py has the parsers)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from certs.errors import CertsError
from certs.identifiers import GlobalGroupId, IdentifierError, MemberId, NodeId, SubsystemId
from certs.keys import load_certificate
from member_registry._certificates import fingerprint
from member_registry.bootstrap import initialise_registry
from member_registry.errors import RegistryBaseError
from member_registry.registration import RegistrationService, parse_status
from member_registry.rotation import activate_rotation, prepare_rotation, retire_previous
from member_registry.server import open_service, serve
from member_registry.service import RegistryService
from member_registry.settings import load_settings

Action = Callable[[RegistryService, argparse.Namespace], Awaitable[str]]


def _fail(message: str) -> int:
    print(f"renkei registry: error: {message}", file=sys.stderr)
    return 1


def run_admin(action: Action, args: argparse.Namespace) -> int:
    async def run() -> str:
        settings = load_settings(args.config, os.environ)
        async with open_service(settings) as service:
            return await action(service, args)

    try:
        print(asyncio.run(run()))
    except (RegistryBaseError, CertsError, IdentifierError) as exc:
        return _fail(f"{exc} [{exc.code}]")
    return 0


def _now() -> datetime:
    return datetime.now(UTC)


# -- init and serve -------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    try:
        result = initialise_registry(args.dir, args.instance, now=_now(), host=args.host,
                                     port=args.port, download_url=args.download_url)
    except RegistryBaseError as exc:
        return _fail(f"{exc} [{exc.code}]")
    print(f"Registry for instance {args.instance} created in {args.dir}")
    print(f"  config:       {result.config}")
    print(f"  admin token:  {result.admin_token_file} (keep it secret)")
    print(f"  anchor:       {result.anchor} (download URL {result.download_url})")
    print(f"  anchor SHA-256: {result.anchor_sha256}")
    print("Give the anchor to node operators; they compare its SHA-256 out of band.")
    return 0


def _serve(args: argparse.Namespace) -> int:
    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ])

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(load_settings(args.config, os.environ), stop,
                    on_ready=lambda url: print(f"registry listening on {url}", flush=True))

    try:
        asyncio.run(run())
    except (RegistryBaseError, CertsError) as exc:
        return _fail(f"{exc} [{exc.code}]")
    except OSError as exc:
        return _fail(f"cannot listen: {exc.strerror or exc}")
    return 0


# -- admin actions --------------------------------------------------------------------------


async def _add_member(service: RegistryService, args: argparse.Namespace) -> str:
    member_id = MemberId.parse(args.id)
    await service.add_member(member_id, args.name)
    return f"added member {member_id} ({args.name})"


async def _list_members(service: RegistryService, args: argparse.Namespace) -> str:
    lines = []
    for member in await service.list_members():
        lines.append(f"{member.id}  {member.name}")
        lines.extend(f"    {subsystem}" for subsystem in member.subsystems)
    return "\n".join(lines) or "(no members)"


async def _add_subsystem(service: RegistryService, args: argparse.Namespace) -> str:
    subsystem_id = SubsystemId.parse(args.id)
    await service.add_subsystem(subsystem_id, args.name)
    return f"added subsystem {subsystem_id}"


async def _list_subsystems(service: RegistryService, args: argparse.Namespace) -> str:
    return "\n".join(str(s) for s in await service.list_subsystems()) or "(no subsystems)"


async def _add_node(service: RegistryService, args: argparse.Namespace) -> str:
    node_id = NodeId.parse(args.id)
    await service.add_node(node_id, args.address, args.peer_port)
    return f"added node {node_id} at {args.address}:{args.peer_port}"


async def _add_node_cert(service: RegistryService, args: argparse.Namespace) -> str:
    node_id = NodeId.parse(args.id)
    sha256 = await service.add_node_auth_certificate(node_id, load_certificate(args.cert),
                                                     now=_now())
    return f"registered auth certificate {sha256} for node {node_id}"


async def _remove_node_cert(service: RegistryService, args: argparse.Namespace) -> str:
    node_id = NodeId.parse(args.id)
    await service.remove_node_auth_certificate(node_id, args.fingerprint)
    return f"removed auth certificate {args.fingerprint.lower()} of node {node_id}"


async def _host(service: RegistryService, args: argparse.Namespace) -> str:
    node_id = NodeId.parse(args.id)
    subsystem_id = SubsystemId.parse(args.subsystem)
    await service.add_hosted_subsystem(node_id, subsystem_id)
    return f"node {node_id} now hosts {subsystem_id}"


async def _list_nodes(service: RegistryService, args: argparse.Namespace) -> str:
    lines = []
    for node in await service.list_nodes():
        lines.append(f"{node.id}  {node.address}:{node.peer_port}")
        lines.extend(f"    auth cert {sha256}" for sha256 in node.auth_cert_sha256)
        lines.extend(f"    hosts {subsystem}" for subsystem in node.subsystems)
    return "\n".join(lines) or "(no nodes)"


async def _add_group(service: RegistryService, args: argparse.Namespace) -> str:
    group_id = GlobalGroupId.parse(args.id)
    await service.add_global_group(group_id, args.description)
    return f"added global group {group_id}"


async def _add_group_member(service: RegistryService, args: argparse.Namespace) -> str:
    group_id = GlobalGroupId.parse(args.group)
    subsystem_id = SubsystemId.parse(args.subsystem)
    await service.add_group_member(group_id, subsystem_id)
    return f"added {subsystem_id} to global group {group_id}"


async def _list_groups(service: RegistryService, args: argparse.Namespace) -> str:
    lines = []
    for group in await service.list_global_groups():
        lines.append(f"{group.id}  {group.description}")
        lines.extend(f"    {subsystem}" for subsystem in group.members)
    return "\n".join(lines) or "(no global groups)"


async def _add_ca(service: RegistryService, args: argparse.Namespace) -> str:
    certificate = load_certificate(args.cert)
    sha256 = await service.add_trusted_ca(certificate, args.ocsp_urls)
    return f"trusted CA {certificate.subject.rfc4514_string()} ({sha256})"


async def _list_cas(service: RegistryService, args: argparse.Namespace) -> str:
    lines = []
    for ca in await service.list_trusted_cas():
        lines.append(f"{fingerprint(ca.certificate)}  {ca.certificate.subject.rfc4514_string()}")
        lines.extend(f"    OCSP {url}" for url in ca.ocsp_urls)
    return "\n".join(lines) or "(no trusted CAs)"


async def _add_tsa(service: RegistryService, args: argparse.Namespace) -> str:
    await service.add_tsa(args.name, args.url, load_certificate(args.cert))
    return f"added time-stamping authority {args.name} at {args.url}"


async def _list_tsas(service: RegistryService, args: argparse.Namespace) -> str:
    return "\n".join(f"{t.name}  {t.url}" for t in await service.list_tsas()) or "(no TSAs)"


async def _show_conf(service: RegistryService, args: argparse.Namespace) -> str:
    conf = await service.build_global_conf(_now())
    return json.dumps(conf.to_json_dict(), indent=2)


async def _publish(service: RegistryService, args: argparse.Namespace) -> str:
    _, conf = await service.publish_conf(_now())
    return f"published version {conf.version}, valid until {conf.expires_at:%Y-%m-%dT%H:%M:%SZ}"


# -- registrations and key rotation ----------------------------------------------------------


def _registrations(service: RegistryService) -> RegistrationService:
    return RegistrationService(service.engine, instance=service.instance)


async def _list_registrations(service: RegistryService, args: argparse.Namespace) -> str:
    lines = []
    for item in await _registrations(service).list(parse_status(args.status)):
        request = item.request
        lines.append(f"{item.id}  {item.status:<8}  {request.node}  "
                     f"{request.address}:{request.peer_port}  auth cert {item.auth_fingerprint}")
        lines.extend(f"    hosts {subsystem}" for subsystem in request.subsystems)
    return "\n".join(lines) or "(no registration requests)"


async def _approve_registration(service: RegistryService, args: argparse.Namespace) -> str:
    item = await _registrations(service).approve(args.id, now=_now(), by="admin (command)")
    return (f"approved registration {item.id}: node {item.request.node}, "
            f"auth cert {item.auth_fingerprint}")


async def _reject_registration(service: RegistryService, args: argparse.Namespace) -> str:
    item = await _registrations(service).reject(args.id, now=_now(), by="admin (command)")
    return f"rejected registration {item.id} of node {item.request.node}"


def _rotate_key(args: argparse.Namespace) -> int:
    anchor = args.anchor or args.config.parent / "anchor.json"
    try:
        settings = load_settings(args.config, os.environ)
        if args.step == "prepare":
            step = prepare_rotation(settings, anchor, now=_now())
        elif args.step == "activate":
            step = activate_rotation(settings, anchor)
        else:
            step = retire_previous(settings, anchor, now=_now())
    except (RegistryBaseError, CertsError) as exc:
        return _fail(f"{exc} [{exc.code}]")
    if args.step == "prepare":
        print("prepared a new signing key; the registry still signs with "
              f"{step.signing_fingerprint}")
        print(f"distribute the new anchor {step.anchor} (SHA-256 {step.anchor_sha256}), "
              "then run rotate-key activate")
    elif args.step == "activate":
        print(f"the signing key is now {step.signing_fingerprint}; restart the registry")
    else:
        print(f"the anchor {step.anchor} lists only {step.signing_fingerprint}; distribute it "
              f"(SHA-256 {step.anchor_sha256})")
    return 0
