"""The end of ``make demo``: where the web console is and how to get in.

Prints each node's console URL with its management tokens to paste (admin,
auditor, consent desk) and, on the provider hospital, a ready-made citizen
link for the demo's patient (issued by its consent desk through the API).
"""

from __future__ import annotations

from typing import Any

import aiohttp

__all__ = ["print_console_links"]

ROLES = ("admin", "auditor", "consent")


async def print_console_links(
    document: dict[str, Any], *, citizen_node: str, subject: str, say: Any
) -> None:
    say()
    say("The web console (docs/console.md), on each node's management port:")
    for node in document["nodes"]:
        tokens = node.get("tokens", {})
        say(f"   {node['id']}: {node['management_url']}/console/")
        for role in ROLES:
            if role in tokens:
                say(f"      log in as {role:<8} with the token {tokens[role]}")
    entry = next(n for n in document["nodes"] if n["id"] == citizen_node)
    async with aiohttp.ClientSession() as session, session.post(
        f"{entry['management_url']}/api/citizen-links",
        json={"subject": subject},
        headers={"Authorization": f"Bearer {entry['tokens']['consent']}"},
    ) as response:
        response.raise_for_status()
        link = await response.json()
    say(f"   Patient {subject!r} sees who used their data at (valid 7 days):")
    say(f"      {entry['management_url']}{link['path']}")
