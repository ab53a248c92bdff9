"""The configuration anchor (``renkei-anchor/1``): the trust root of a node's global configuration.

The anchor is installed out of band. It names the instance, where to download the
configuration and the registry's verification certificate(s); several certificates
allow the registry's signing key to be rotated. The operator compares the file's
SHA-256 (``anchor_digest``) with the value the registry operator published.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from member_registry._certificates import certificate_to_pem
from member_registry._strict_json import (
    FormatError,
    format_time,
    loads_strict,
    parse_time,
    read_certificate,
    read_list,
    read_object,
    read_str,
    read_url,
)
from member_registry.errors import AnchorError

__all__ = ["ANCHOR_FORMAT", "Anchor", "anchor_digest", "load_anchor", "write_anchor"]

ANCHOR_FORMAT = "renkei-anchor/1"


@dataclass(frozen=True)
class Anchor:
    instance: str
    generated_at: datetime
    download_urls: tuple[str, ...]
    verification_certificates: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if not self.instance:
            raise AnchorError("anchor instance must not be empty")
        if self.generated_at.utcoffset() is None:
            raise AnchorError("anchor generated_at must be timezone-aware")
        # Without a certificate nothing could ever verify: refuse it early and loudly.
        if not self.verification_certificates:
            raise AnchorError("anchor has no verification certificate")

    def to_json_dict(self) -> dict[str, object]:
        return {
            "format": ANCHOR_FORMAT,
            "instance": self.instance,
            "generated_at": format_time(self.generated_at),
            "download_urls": list(self.download_urls),
            "verification_certificates": [
                certificate_to_pem(c) for c in self.verification_certificates
            ],
        }

    @classmethod
    def from_json_dict(cls, value: object) -> Anchor:
        try:
            d = read_object(value, "anchor", ("format", "instance", "generated_at",
                                              "download_urls", "verification_certificates"))
            if d["format"] != ANCHOR_FORMAT:
                raise FormatError(f"format must be {ANCHOR_FORMAT!r}")
            return cls(
                instance=read_str(d["instance"], "instance"),
                generated_at=parse_time(d["generated_at"], "generated_at"),
                download_urls=read_list(d["download_urls"], "download_urls", read_url),
                verification_certificates=read_list(
                    d["verification_certificates"], "verification_certificates", read_certificate
                ),
            )
        except FormatError as exc:
            raise AnchorError(f"malformed anchor: {exc}") from exc


def load_anchor(path: str | os.PathLike[str]) -> Anchor:
    """Read and strictly parse an anchor file; raises ``AnchorError``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AnchorError(f"cannot read anchor {path}: {exc.strerror}") from exc
    try:
        document = loads_strict(data)
    except FormatError as exc:
        raise AnchorError(f"malformed anchor: {exc}") from exc
    return Anchor.from_json_dict(document)


def write_anchor(anchor: Anchor, path: str | os.PathLike[str]) -> None:
    """Write the anchor atomically (a reader never sees half a file)."""
    target = Path(path)
    text = json.dumps(anchor.to_json_dict(), indent=2, sort_keys=True) + "\n"
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        raise AnchorError(f"cannot write anchor {path}: {exc.strerror}") from exc


def anchor_digest(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the anchor file's bytes, compared by the operator out of band."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise AnchorError(f"cannot read anchor {path}: {exc.strerror}") from exc
