"""``make sslyze``: scan a sandbox node's peer port with sslyze (Mozilla "modern").

The peer port requires a client certificate, so the scan presents node A's
auth certificate and key. Exits with sslyze's status: 0 when the port
complies with the modern profile.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from gateway.settings import load_node_settings
from tests.functional.hostile_helpers import host_port
from tests.functional.sandbox_helpers import node, sandbox_process


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="renkei-sslyze-")) / "sandbox"
    with sandbox_process(directory) as document:
        settings = load_node_settings(Path(node(document, "RENKEI/GOV/HOSP-A/ss1")["config"]))
        host, port = host_port(node(document, "RENKEI/GOV/HOSP-B/ss1")["peer_url"])
        argv = [
            sys.executable, "-m", "sslyze", "--mozilla_config=modern",
            "--cert", str(settings.auth_certificate), "--key", str(settings.auth_key),
            f"{host}:{port}",
        ]
        return subprocess.run(argv, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
