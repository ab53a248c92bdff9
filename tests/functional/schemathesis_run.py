"""``make schemathesis``: fuzz both management APIs from their OpenAPI descriptions.

Starts a sandbox federation, then runs schemathesis against the first node's
management API (with an admin token) and the registry's API (with its admin
token): no server error, no response outside the description.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from tests.functional.sandbox_helpers import sandbox_process

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," \
    "response_schema_conformance"


def _run(base_url: str, token: str) -> int:
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{base_url}/openapi.json",
        "--url", base_url, "--checks", CHECKS, "--max-examples", "25",
        "--header", f"Authorization: Bearer {token}",
    ]
    print("+", " ".join(command[:-2]), "--header 'Authorization: Bearer ...'", flush=True)
    return subprocess.run(command, check=False).returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="renkei-schemathesis-") as work:
        with sandbox_process(Path(work) / "sandbox") as document:
            node = document["nodes"][0]
            registry_token = _registry_token(Path(document["dir"]))
            failures = _run(node["management_url"], node["tokens"]["admin"])
            failures |= _run(document["registry"]["url"], registry_token)
    return 1 if failures else 0


def _registry_token(directory: Path) -> str:
    config = next(directory.rglob("registry.toml"))
    token_file = tomllib.loads(config.read_text("utf-8"))["admin_token_file"]
    return (config.parent / token_file).read_text("utf-8").strip()


if __name__ == "__main__":
    raise SystemExit(main())
