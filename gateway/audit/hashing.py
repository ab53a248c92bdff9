"""The hashing rules of the audit chain, shared by writer and verifiers.

A row's ``entry_hash`` is ``SHA-256(prev_hash || 0x00 || canonical JSON of
the row's fields)``, hex encoded, where the fields are every column except
``entry_hash`` itself and the canonical JSON is RFC 8785 (``certs.jws``). The
fields are strings, integers and nulls only, for which RFC 8785 is exactly the
sorted-keys, no-spaces, UTF-8 (non-ASCII unescaped) form rows were first hashed
in; anything else is refused so that can never drift. The first row of a chain
has ``prev_hash`` = 64 zeros.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from certs.jws import canonical_json

__all__ = ["GENESIS_HASH", "entry_hash"]

GENESIS_HASH = "0" * 64


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    for name, value in fields.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ValueError(f"audit field {name} must be a string, an integer or null")
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\x00")
    digest.update(canonical_json(dict(fields)))
    return digest.hexdigest()
