"""``renkei registry ...``: create, serve and administer the member registry."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``renkei registry`` and its sub-commands to the ``renkei`` parser."""
    registry = commands.add_parser("registry", help="the member registry")
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create a registry: signing key, config, anchor")
    init.add_argument("--dir", type=Path, required=True, help="directory to create it in")
    init.add_argument("--instance", required=True, help="federation instance, e.g. RENKEI")
    init.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    init.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    init.add_argument("--download-url", help="URL nodes fetch the configuration from "
                      "(default http://HOST:PORT/globalconf)")
    init.set_defaults(handler=_handler("_init"))

    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, required=True, help="the registry.toml file")

    serve_parser = sub.add_parser("serve", parents=[config],
                                  help="serve the API until SIGINT/SIGTERM")
    serve_parser.set_defaults(handler=_handler("_serve"))

    member = _group(sub, "member", "members (organisations)")
    _command(member, "add", config, "_add_member", "add a member",
             ("id", {"help": "INSTANCE/CLASS/CODE"}), ("--name", {"required": True}))
    _command(member, "list", config, "_list_members", "list members")

    subsystem = _group(sub, "subsystem", "subsystems of members")
    _command(subsystem, "add", config, "_add_subsystem", "add a subsystem",
             ("id", {"help": "INSTANCE/CLASS/CODE/SUBSYSTEM"}),
             ("--name", {"help": "display name (listClients' subsystem_name)"}))
    _command(subsystem, "list", config, "_list_subsystems", "list subsystems")

    node = _group(sub, "node", "nodes (security servers)")
    _command(node, "add", config, "_add_node", "add a node",
             ("id", {"help": "INSTANCE/CLASS/CODE/NODE"}), ("--address", {"required": True}),
             ("--peer-port", {"type": int, "required": True}))
    _command(node, "add-cert", config, "_add_node_cert", "register a node's auth certificate",
             ("id", {}), ("--cert", {"type": Path, "required": True, "help": "PEM file"}))
    _command(node, "remove-cert", config, "_remove_node_cert", "remove an auth certificate",
             ("id", {}), ("fingerprint", {"help": "SHA-256, hex"}))
    _command(node, "host", config, "_host", "host a subsystem on a node",
             ("id", {}), ("subsystem", {}))
    _command(node, "list", config, "_list_nodes", "list nodes")

    group = _group(sub, "group", "global groups")
    _command(group, "add", config, "_add_group", "add a global group",
             ("id", {"help": "INSTANCE/GROUP"}), ("--description", {"default": ""}))
    _command(group, "add-member", config, "_add_group_member", "add a subsystem to a group",
             ("group", {}), ("subsystem", {}))
    _command(group, "list", config, "_list_groups", "list global groups")

    ca = _group(sub, "ca", "trusted certification authorities")
    _command(ca, "add", config, "_add_ca", "trust a CA certificate",
             ("--cert", {"type": Path, "required": True, "help": "PEM file"}),
             ("--ocsp-url", {"action": "append", "default": [], "dest": "ocsp_urls"}))
    _command(ca, "list", config, "_list_cas", "list trusted CAs")

    tsa = _group(sub, "tsa", "time-stamping authorities")
    _command(tsa, "add", config, "_add_tsa", "add a time-stamping authority",
             ("--name", {"required": True}), ("--url", {"required": True}),
             ("--cert", {"type": Path, "required": True, "help": "PEM file"}))
    _command(tsa, "list", config, "_list_tsas", "list time-stamping authorities")

    conf = _group(sub, "conf", "the global configuration")
    _command(conf, "show", config, "_show_conf", "print what the next version would contain")
    _command(conf, "publish", config, "_publish", "sign and store a new version now")

    registration = _group(sub, "registration", "node auth-certificate registration requests")
    _command(registration, "list", config, "_list_registrations", "list registration requests",
             ("--status", {"choices": ["pending", "approved", "rejected", "all"],
                           "default": "all"}))
    _command(registration, "approve", config, "_approve_registration",
             "approve a pending request (verified again now)", ("id", {"type": int}))
    _command(registration, "reject", config, "_reject_registration", "reject a pending request",
             ("id", {"type": int}))

    rotate = sub.add_parser("rotate-key", parents=[config],
                            help="rotate the configuration-signing key in three steps")
    rotate.add_argument("step", choices=["prepare", "activate", "retire"],
                        help="prepare: new key + anchor listing both; activate: sign with the "
                             "new key (restart the registry); retire: anchor with it only")
    rotate.add_argument("--anchor", type=Path,
                        help="the anchor file to update (default: anchor.json beside --config)")
    rotate.set_defaults(handler=_handler("_rotate_key"))


# -- parser helpers -------------------------------------------------------------------------


def _group(sub: argparse._SubParsersAction[Any], name: str,
           help_text: str) -> argparse._SubParsersAction[Any]:
    parser = sub.add_parser(name, help=help_text)
    commands: argparse._SubParsersAction[Any] = parser.add_subparsers(
        dest=f"{name}_command", required=True, metavar="COMMAND")
    return commands


def _command(
    sub: argparse._SubParsersAction[Any], name: str, config: argparse.ArgumentParser,
    action: str, help_text: str, *arguments: tuple[str, dict[str, Any]],
) -> None:
    parser = sub.add_parser(name, parents=[config], help=help_text)
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    parser.set_defaults(handler=_handler(action, admin=True))


def _handler(name: str, *, admin: bool = False) -> Handler:
    """The command ``name`` of member_registry/_cli_commands.py, imported when it runs
    (so ``renkei --help`` loads none of the registry)."""

    def run(args: argparse.Namespace) -> int:
        from member_registry import _cli_commands as commands

        function = getattr(commands, name)
        return commands.run_admin(function, args) if admin else int(function(args))

    return run
