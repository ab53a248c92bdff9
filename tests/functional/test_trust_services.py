"""The CA, OCSP responder and TSA as real processes, checked by the real openssl binary.

These are the independent checks of the trust-services issue: ``openssl ocsp``
says good, then revoked after ``renkei ca revoke``; ``openssl verify
-crl_check`` rejects the revoked certificate; ``openssl ts -verify`` accepts
the TSA's replies, with and without the certificate in the token.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 30


def renkei(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def openssl(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False,
        timeout=60,
    )  # fmt: skip


@contextmanager
def serving(*args: str | Path, cwd: Path) -> Iterator[str]:
    """Start ``renkei <args> --port 0``, yield its URL, stop it by its pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *map(str, args), "--port", "0"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
        line = process.stdout.readline() if ready else ""
        if " listening on http://" not in line:
            process.kill()
            _, stderr = process.communicate(timeout=10)
            pytest.fail(f"server did not start: {line!r} {stderr}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def issue_node_certificate(directory: Path, name: str) -> tuple[Path, str]:
    renkei("key", "generate", "--out", f"{name}.key", cwd=directory)
    renkei(
        "csr", "create", "--key", f"{name}.key", "--profile", "auth",
        "--id", f"EE/GOV/70000001/{name}", "--out", f"{name}.csr", cwd=directory,
    )  # fmt: skip
    output = renkei(
        "ca", "issue", "--dir", "ca", "--csr", f"{name}.csr", "--profile", "auth",
        "--out", f"{name}.pem", cwd=directory,
    )  # fmt: skip
    serial = next(line.split()[1] for line in output.splitlines() if line.startswith("serial:"))
    return directory / f"{name}.pem", serial


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    renkei("ca", "init", "--dir", "ca", "--instance", "EE", cwd=tmp_path)
    return tmp_path


def ocsp_check(directory: Path, url: str, cert: Path) -> subprocess.CompletedProcess[str]:
    return openssl(
        "ocsp", "-issuer", "ca/ca.pem", "-cert", cert, "-url", url, "-CAfile", "ca/ca.pem",
        cwd=directory,
    )  # fmt: skip


def test_openssl_ocsp_says_good_then_revoked_and_crl_check_agrees(pki: Path) -> None:
    node, serial = issue_node_certificate(pki, "node1")
    other, _ = issue_node_certificate(pki, "node2")
    with serving("ocsp", "serve", "--ca-dir", "ca", cwd=pki) as url:
        before = ocsp_check(pki, url, node)
        assert f"{node}: good" in before.stdout, before.stderr
        assert "Response verify OK" in before.stderr

        renkei("ca", "revoke", serial, "--dir", "ca", "--reason", "keyCompromise", cwd=pki)
        after = ocsp_check(pki, url, node)
        assert f"{node}: revoked" in after.stdout, after.stderr
        assert "Reason: keyCompromise" in after.stdout
        assert "Response verify OK" in after.stderr
        assert f"{other}: good" in ocsp_check(pki, url, other).stdout

    renkei("ca", "crl", "--dir", "ca", cwd=pki)
    crl_args = ("verify", "-crl_check", "-CRLfile", "ca/crl.pem", "-CAfile", "ca/ca.pem")
    rejected = openssl(*crl_args, node, cwd=pki)
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr
    assert openssl(*crl_args, other, cwd=pki).returncode == 0


def post(url: str, body: bytes, content_type: str) -> bytes:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "application/timestamp-reply"
        return bytes(response.read())


@pytest.mark.parametrize("with_certificate", [True, False])
def test_openssl_ts_verify_accepts_the_tsa_replies(pki: Path, with_certificate: bool) -> None:
    data = pki / "checkpoint.json"
    data.write_text('{"tree_size": 42}\n')
    query: list[str | Path] = ["ts", "-query", "-data", data, "-sha256", "-out", "query.tsq"]
    if with_certificate:
        query.append("-cert")
    assert openssl(*query, cwd=pki).returncode == 0
    with serving("tsa", "serve", "--ca-dir", "ca", cwd=pki) as url:
        reply = post(url, (pki / "query.tsq").read_bytes(), "application/timestamp-query")
    (pki / "reply.tsr").write_bytes(reply)
    verify: list[str | Path] = [
        "ts",
        "-verify",
        "-data",
        data,
        "-in",
        "reply.tsr",
        "-CAfile",
        "ca/ca.pem",
    ]
    if not with_certificate:
        verify += ["-untrusted", "ca/services/tsa.pem"]
    result = openssl(*verify, cwd=pki)
    assert "Verification: OK" in result.stdout, result.stdout + result.stderr
    matches_query = openssl(
        "ts", "-verify", "-queryfile", "query.tsq", "-in", "reply.tsr", "-CAfile", "ca/ca.pem",
        "-untrusted", "ca/services/tsa.pem", cwd=pki,
    )  # fmt: skip
    assert "Verification: OK" in matches_query.stdout, matches_query.stderr
