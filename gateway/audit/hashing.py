"""The hashing rules of the audit chain, shared by writer and verifiers.

A row's ``entry_hash`` is ``SHA-256(prev_hash || 0x00 || canonical JSON of the
row's hashed fields)``, hex encoded, with the canonical JSON of RFC 8785
(``certs.jws``). The fields are strings, integers and nulls only, for which
RFC 8785 is exactly the sorted-keys, no-spaces, UTF-8 (non-ASCII unescaped)
form rows were first hashed in; anything else is refused so that can never
drift. The first row of a chain has ``prev_hash`` = 64 zeros.

Which fields are hashed is the row's **format**, so that the rule can change
without making chains written before unverifiable; verifiers dispatch on it:

* format 1: rows without a ``format`` (or with ``format`` null), written before
  rows carried one: the 23 fields ``node_id`` .. ``prev_hash``;
* format 2 (written now): those 23 fields and ``format`` itself.

Any other format is refused: a verifier must not guess a rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from certs.jws import canonical_json

__all__ = ["GENESIS_HASH", "ROW_FORMAT", "UnknownRowFormat", "entry_hash"]

GENESIS_HASH = "0" * 64
ROW_FORMAT = 2
_FORMATS = (2,)  # besides None, format 1


class UnknownRowFormat(ValueError):
    """A row names a hashing rule this verifier does not know."""


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The entry hash of a row from its hashed fields, by the rule its ``format`` names."""
    row_format = fields.get("format")
    if row_format is not None and (type(row_format) is not int or row_format not in _FORMATS):
        raise UnknownRowFormat(f"audit row format {row_format!r} is not known")
    hashed = dict(fields)
    if row_format is None:
        hashed.pop("format", None)  # format 1 predates the field
    for name, value in hashed.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ValueError(f"audit field {name} must be a string, an integer or null")
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\x00")
    digest.update(canonical_json(hashed))
    return digest.hexdigest()
