"""The ``renkei`` command: each package contributes its own sub-commands.

Sub-command modules import what their handlers need when a handler runs, so
``renkei --help`` loads no database, HTTP or cryptography library. A reader
that goes away (``renkei ... | head``) ends the command quietly with status
141, as the shell reports SIGPIPE; Ctrl-C ends it with 130, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from certs import cli as certs_cli
    from gateway import (
        audit_cli,
        client_cli,
        node_cli,
        policy_apply_cli,
        policy_cli,
        service_cli,
    )
    from member_registry import cli as registry_cli
    from policies import cli as policies_cli

    parser = argparse.ArgumentParser(
        prog="renkei", description="Renkei federated data-exchange gateway"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    certs_cli.register(commands)
    registry_cli.register(commands)
    policy_apply_cli.register_apply(policies_cli.register(commands))
    node_cli.register(commands)
    audit_cli.register(commands)
    policy_cli.register(commands)
    service_cli.register(commands)
    client_cli.register(commands)
    _register_broker(commands)
    return parser


def _register_broker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from gateway.broker.convert import cli as convert_cli

    broker = commands.add_parser("broker", help="the NGSI-LD broker's tools")
    broker_commands = broker.add_subparsers(
        dest="broker_command", required=True, metavar="COMMAND"
    )
    convert_cli.register(broker_commands)


EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line the terminal's ^C started
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python would flush stdout again at exit and report that pipe error too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
