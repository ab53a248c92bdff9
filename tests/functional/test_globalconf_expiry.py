"""A node whose global configuration has expired refuses every exchange (fail closed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from gateway.serve import running_node
from gateway.settings import load_node_settings
from tests.functional.sandbox_helpers import node

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"


async def test_expired_configuration_refuses_exchanges_and_readiness(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    config = Path(node(federation, HOSP_A)["config"])
    settings = load_node_settings(
        config,
        environ={
            "RENKEI_NODE_DATA_DIR": str(tmp_path),
            "RENKEI_NODE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'node.db'}",
            "RENKEI_NODE_CLIENT__PORT": "0",
            "RENKEI_NODE_CLIENT_TLS__PORT": "0",
            # A fresh database has none of the sandbox's client tokens.
            "RENKEI_NODE_CLIENT__ALLOW_UNAUTHENTICATED": "true",
            "RENKEI_NODE_PEER__PORT": "0",
            "RENKEI_NODE_MANAGEMENT__PORT": "0",
            "RENKEI_NODE_POLICY_FILE": str(config.parent / "policy.toml"),
        },
    )
    # This node's clock runs two hours ahead: every configuration the registry
    # signs now has already expired for it.
    async with running_node(settings, clock=lambda: datetime.now(UTC) + timedelta(hours=2)) as run:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"http://127.0.0.1:{run.client_port}/r1/RENKEI/GOV/HOSP-B/EHR/echo/x",
                headers={"X-Road-Client": "RENKEI/GOV/HOSP-A/EHR"},
            ) as response:
                assert response.status == 500  # r1: X-Road's 500 for server.* (docs/protocol.md)
                assert response.headers["X-Road-Error"] == "server.clientproxy.global_conf_outdated"
            async with session.get(f"http://127.0.0.1:{run.management_port}/readyz") as response:
                assert response.status == 503
                document = await response.json()
                assert document["checks"]["global_conf"]["ok"] is False
