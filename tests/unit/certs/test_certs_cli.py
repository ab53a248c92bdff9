"""The ca/key/csr sub-commands, run through the real ``renkei`` entry point."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from certs.keys import fingerprint, load_certificate
from certs.profiles import member_id_of, node_id_of
from gateway.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_full_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = tmp_path / "ca"
    code, out, _ = _run(capsys, "ca", "init", "--dir", str(ca_dir), "--instance", "EE")
    assert code == 0
    root = load_certificate(ca_dir / "ca.pem")
    assert fingerprint(root) in out

    for profile, identifier, algorithm in (
        ("auth", "EE/GOV/70000001/node1", "ec-p256"),
        ("sign", "EE/GOV/70000001", "ed25519"),
    ):
        key, csr, cert = (tmp_path / f"{profile}.{ext}" for ext in ("key", "csr", "pem"))
        assert _run(capsys, "key", "generate", "--out", str(key), "--algorithm", algorithm)[0] == 0
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        code, _, err = _run(
            capsys,
            "csr", "create", "--key", str(key), "--profile", profile,
            "--id", identifier, "--out", str(csr),
        )  # fmt: skip
        assert code == 0, err
        code, out, err = _run(
            capsys,
            "ca", "issue", "--dir", str(ca_dir), "--csr", str(csr),
            "--profile", profile, "--out", str(cert), "--days", "30",
        )  # fmt: skip
        assert code == 0, err
        issued = load_certificate(cert)
        assert fingerprint(issued) in out
        identity = node_id_of(issued) if profile == "auth" else member_id_of(issued)
        assert str(identity) == identifier
        result = subprocess.run(
            ["openssl", "verify", "-CAfile", str(ca_dir / "ca.pem"), str(cert)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    code, out, _ = _run(capsys, "ca", "list", "--dir", str(ca_dir))
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "auth" in lines[0]
    assert "EE/GOV/70000001/node1" in lines[0]
    code, out, _ = _run(capsys, "ca", "list", "--dir", str(ca_dir), "--json")
    entries = json.loads(out)
    assert [entry["profile"] for entry in entries] == ["auth", "sign"]


def test_init_with_algorithm_and_refusal_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir = str(tmp_path / "ca")
    args = ("ca", "init", "--dir", ca_dir, "--instance", "EE", "--algorithm", "ed25519")
    assert _run(capsys, *args)[0] == 0
    code, _, err = _run(capsys, *args)
    assert code == 1
    assert err.startswith("error: ")
    assert "certs.ca_exists" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ca", "list", "--dir", "{tmp}/nowhere"], "no CA"),
        (["ca", "init", "--dir", "{tmp}/ca", "--instance", "E E"], "certs.ca_invalid"),
        (["key", "generate", "--out", "{tmp}/missing/dir/k.key"], "certs.key_invalid"),
        (
            ["csr", "create", "--key", "{tmp}/missing.key", "--profile", "auth",
             "--id", "EE/GOV/1/n", "--out", "{tmp}/x.csr"],
            "cannot read key",
        ),
    ],
)  # fmt: skip
def test_user_errors_exit_1_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, _, err = _run(capsys, *(part.format(tmp=tmp_path) for part in argv))
    assert code == 1
    assert expected in err
    assert "Traceback" not in err


def test_csr_identity_must_fit_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.key"
    _run(capsys, "key", "generate", "--out", str(key))
    code, _, err = _run(
        capsys,
        "csr", "create", "--key", str(key), "--profile", "sign",
        "--id", "EE/GOV/1/node", "--out", str(tmp_path / "x.csr"),
    )  # fmt: skip
    assert code == 1
    assert "member identifier" in err
    assert not (tmp_path / "x.csr").exists()


def test_key_generate_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k.key"
    assert _run(capsys, "key", "generate", "--out", str(key))[0] == 0
    before = key.read_bytes()
    code, _, err = _run(capsys, "key", "generate", "--out", str(key))
    assert code == 1
    assert "already exists" in err
    assert key.read_bytes() == before


def test_issue_rejects_csr_of_another_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir, key, csr = tmp_path / "ca", tmp_path / "k.key", tmp_path / "k.csr"
    _run(capsys, "ca", "init", "--dir", str(ca_dir), "--instance", "EE")
    _run(capsys, "key", "generate", "--out", str(key))
    _run(
        capsys,
        "csr", "create", "--key", str(key), "--profile", "auth",
        "--id", "FI/GOV/1/node", "--out", str(csr),
    )  # fmt: skip
    code, _, err = _run(
        capsys,
        "ca", "issue", "--dir", str(ca_dir), "--csr", str(csr),
        "--profile", "auth", "--out", str(tmp_path / "k.pem"),
    )  # fmt: skip
    assert code == 1
    assert "certs.csr_invalid" in err
    assert not (tmp_path / "k.pem").exists()
    _, out, _ = _run(capsys, "ca", "list", "--dir", str(ca_dir))
    assert out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["ca"],
        ["ca", "issue", "--dir", "x"],
        ["ca", "init", "--dir", "x", "--instance", "EE", "--algorithm", "dsa"],
        ["csr", "create", "--key", "k", "--profile", "tls", "--id", "x", "--out", "y"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    capsys.readouterr()


def test_issued_certificate_is_pem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir, key, csr, cert = (tmp_path / n for n in ("ca", "k.key", "k.csr", "k.pem"))
    _run(capsys, "ca", "init", "--dir", str(ca_dir), "--instance", "EE")
    _run(capsys, "key", "generate", "--out", str(key), "--algorithm", "rsa-2048")
    _run(
        capsys,
        "csr", "create", "--key", str(key), "--profile", "auth",
        "--id", "EE/GOV/1/node", "--out", str(csr),
    )  # fmt: skip
    assert x509.load_pem_x509_csr(csr.read_bytes()).is_signature_valid
    _run(
        capsys,
        "ca", "issue", "--dir", str(ca_dir), "--csr", str(csr),
        "--profile", "auth", "--out", str(cert),
    )  # fmt: skip
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
