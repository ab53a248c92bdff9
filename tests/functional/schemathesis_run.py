"""``make schemathesis``: fuzz both management APIs from their OpenAPI descriptions.

Starts a sandbox federation, then runs schemathesis (checks and exemptions in
``schemathesis.toml`` beside this file) against the first node's
management API (with an admin JWT) and the registry's API (with an admin JWT from
``renkei token issue --registry-config``): no server error, no status code, media
type or body outside the description. The per-token rate limits are raised for
this run only (``RENKEI_NODE_MANAGEMENT__RATE_LIMIT_*``, ``RENKEI_REGISTRY_RATE_LIMIT_*``),
so the fuzzer reaches the handlers instead of a wall of 429s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.functional.sandbox_helpers import sandbox_process

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
# Only for this run: a production node or registry keeps its default limits.
FUZZING_ENVIRONMENT = {
    "RENKEI_NODE_MANAGEMENT__RATE_LIMIT_PER_S": "100000",
    "RENKEI_NODE_MANAGEMENT__RATE_LIMIT_BURST": "100000",
    "RENKEI_REGISTRY_RATE_LIMIT_PER_S": "100000",
    "RENKEI_REGISTRY_RATE_LIMIT_BURST": "100000",
    "SCHEMATHESIS_HOOKS": "tests.functional.schemathesis_hooks",
}


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(name: str, base_url: str, token: str) -> int:
    command = [
        _bin("schemathesis"), "--config-file", str(CONFIG),
        "run", f"{base_url}/openapi.json", "--url", base_url,
        "--max-examples", MAX_EXAMPLES,
        "--header", f"Authorization: Bearer {token}",
    ]
    print(f"== {name}:", " ".join(command[:-2]), "--header 'Authorization: Bearer ...'",
          flush=True)
    return subprocess.run(command, check=False).returncode


def _registry_token(directory: Path) -> str:
    config = next(directory.rglob("registry.toml"))
    issued = subprocess.run(
        [_bin("renkei"), "token", "issue", "--registry-config", str(config),
         "--role", "admin", "--ttl", "1h", "--subject", "schemathesis"],
        check=True, capture_output=True, text=True,
    )
    return issued.stdout.strip()


def main() -> int:
    os.environ.update(FUZZING_ENVIRONMENT)
    with tempfile.TemporaryDirectory(prefix="renkei-schemathesis-") as work:
        with sandbox_process(Path(work) / "sandbox") as document:
            node = document["nodes"][0]
            registry_token = _registry_token(Path(document["dir"]))
            results = {
                "node": _run("node management API", node["management_url"],
                             node["tokens"]["admin"]),
                "registry": _run("registry API", document["registry"]["url"], registry_token),
            }
    print("== summary:", ", ".join(f"{k}: {'passed' if v == 0 else 'FAILED'}"
                                   for k, v in results.items()), flush=True)
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
