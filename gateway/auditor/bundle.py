"""Reading an export bundle (directory or ``.tar.gz``) and checking its manifest digests."""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certs.jws import loads_strict
from gateway.auditor.errors import BundleInvalid

__all__ = ["BUNDLE_FORMAT", "Bundle", "read_bundle"]

BUNDLE_FORMAT = "renkei-audit-bundle/1"
_MAX_MEMBER_BYTES = 1 << 31
_REQUIRED = ("rows.jsonl", "prior_leaves.txt", "checkpoints.jsonl", "globalconf.jws")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    files: dict[str, bytes]

    @property
    def node_id(self) -> str:
        return str(self.manifest["node"])

    @property
    def first_seq(self) -> int:
        return int(self.manifest["first_seq"])

    @property
    def last_seq(self) -> int:
        return int(self.manifest["last_seq"])

    def json_lines(self, name: str) -> list[dict[str, Any]]:
        result = []
        for number, line in enumerate(self.text(name).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                # Strictly: a row with a key twice would hash one way and read another.
                value = loads_strict(line)
            except ValueError as exc:
                raise BundleInvalid(f"{name} line {number} is not strict JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise BundleInvalid(f"{name} line {number} is not an object")
            result.append(value)
        return result

    def text(self, name: str) -> str:
        try:
            return self.files.get(name, b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleInvalid(f"{name} is not UTF-8") from exc


def _read_files(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        if path.is_dir():
            for item in path.iterdir():
                if item.is_file():
                    files[item.name] = item.read_bytes()
            return files
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                # Only plain files at the top level: no links, no paths to escape through.
                if not member.isfile() or "/" in member.name or member.size > _MAX_MEMBER_BYTES:
                    raise BundleInvalid(f"unexpected entry {member.name!r} in {path}")
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise BundleInvalid(f"cannot read {member.name!r} in {path}")
                files[member.name] = extracted.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BundleInvalid(f"cannot read the bundle {path}: {exc}") from exc
    return files


def read_bundle(path: Path) -> Bundle:
    """Read a bundle and check that every file matches its manifest digest."""
    files = _read_files(path)
    raw = files.pop("manifest.json", None)
    if raw is None:
        raise BundleInvalid(f"{path} has no manifest.json")
    try:
        manifest = loads_strict(raw)
    except ValueError as exc:
        raise BundleInvalid(f"manifest.json is not strict JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleInvalid(f"manifest.json is not a {BUNDLE_FORMAT} manifest")
    digests = manifest.get("files")
    if not isinstance(digests, dict):
        raise BundleInvalid("manifest.json lists no files")
    for name in _REQUIRED:
        if name not in digests:
            raise BundleInvalid(f"the manifest does not list {name}")
    if set(files) != set(digests):
        extra = sorted(set(files) ^ set(digests))
        raise BundleInvalid(f"files and manifest disagree about: {', '.join(extra)}")
    for name, expected in digests.items():
        if hashlib.sha256(files[name]).hexdigest() != expected:
            raise BundleInvalid(f"{name} does not match its digest in the manifest")
    for key in ("node", "first_seq", "last_seq"):
        if key not in manifest:
            raise BundleInvalid(f"manifest.json has no {key}")
    return Bundle(
        path=path,
        manifest=manifest,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        files=files,
    )
