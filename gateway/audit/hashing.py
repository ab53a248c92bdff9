"""The hashing rules of the audit chain, shared by writer and verifiers.

A row's ``entry_hash`` is ``SHA-256(prev_hash || 0x00 || canonical JSON of
the row's fields)``, hex encoded, where the fields are every column except
``entry_hash`` itself and the canonical JSON has sorted keys, no spaces and
UTF-8 text. The first row of a chain has ``prev_hash`` = 64 zeros.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["GENESIS_HASH", "entry_hash"]

GENESIS_HASH = "0" * 64


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    body = json.dumps(
        dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\x00")
    digest.update(body)
    return digest.hexdigest()
