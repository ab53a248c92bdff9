"""Command-line interface of this package (registered into ``renkei``).

``renkei policy check FILE`` validates a policy file offline. Commands that talk to a
running node's management API (consents, access rights) belong to the gateway.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.files import PolicyFile


def register(commands: argparse._SubParsersAction[Any]) -> argparse._SubParsersAction[Any]:
    """Add this package's sub-commands to the ``renkei`` parser; the ``policy`` actions
    (the gateway adds ``apply``, which needs a node)."""
    policy = commands.add_parser("policy", help="access rights, declarations and consent")
    actions: argparse._SubParsersAction[Any] = policy.add_subparsers(
        dest="policy_command", required=True, metavar="ACTION"
    )
    check = actions.add_parser("check", help="validate a policy file and summarise it")
    check.add_argument("file", metavar="FILE", help="policy file (TOML)")
    check.add_argument("--json", action="store_true", help="the result as JSON (for scripts)")
    check.set_defaults(handler=check_command)
    return actions


def summarise(policy_file: PolicyFile) -> list[str]:
    """Human-readable lines describing a validated policy file."""
    lines = [f"{policy_file.path}: valid"]
    for group in policy_file.local_groups:
        lines.append(f"  local group {group.ref}: {len(group.members)} member(s)")
    for service in policy_file.services:
        governed = "consent-governed" if service.consent_governed else "not consent-governed"
        lines.append(
            f"  service {service.service}: {len(service.fields)} field(s), "
            f"{len(service.public_fields)} public, {governed}, subject by {service.subject}"
        )
    for right in policy_file.access:
        lines.append(f"  access {right.service} -> {right.grantee}: {right.method} {right.path}")
    for purpose in policy_file.purposes:
        lines.append(f"  purpose {purpose.consumer} {purpose.code}: {purpose.text}")
    return lines


def check_command(args: argparse.Namespace) -> int:
    # Imported here: the policy store (SQLAlchemy) is not needed for ``renkei --help``.
    from policies.errors import PolicyFileError
    from policies.files import load_policy_file

    try:
        policy_file = load_policy_file(args.file)
    except PolicyFileError as exc:
        if args.json:
            print(json.dumps({"file": args.file, "valid": False, "errors": list(exc.errors)}))
            return 1
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({
            "file": args.file, "valid": True,
            "local_groups": len(policy_file.local_groups), "services": len(policy_file.services),
            "access": len(policy_file.access), "purposes": len(policy_file.purposes),
        }))  # fmt: skip
        return 0
    print("\n".join(summarise(policy_file)))
    return 0
