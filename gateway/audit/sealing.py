"""Sealing logged bodies under a data subject's own key (crypto-shredding).

Each data subject whose bodies a node logs gets a random 256-bit key of its
own; the key is stored wrapped by the node's body key (Fernet, in
:mod:`gateway.audit.bodies`), and erasing the subject deletes it. Every copy of
the subject's bodies, wherever the storage engine or a backup left it, is then
ciphertext under a key that no longer exists.

Sealed format, version 2 (version 1 is a bare Fernet token under the node's
body key, which still opens)::

    0x02 || nonce (96 bits, random) || AES-256-GCM ciphertext and tag

AES-GCM is NIST SP 800-38D, through ``cryptography``'s AEAD interface. The
associated data is the body's place (node, request id, kind, key id), so a
sealed body copied onto another row does not open. A subject key seals only
that subject's bodies, far below the 2**32 random nonces SP 800-38D §8.3
allows per key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.audit.errors import BodyStoreError

__all__ = ["SEALED_VERSION", "body_context", "new_subject_key", "open_sealed", "seal"]

SEALED_VERSION = 2
_VERSION_BYTE = bytes([SEALED_VERSION])
_NONCE_BYTES = 12
_KEY_BYTES = 32


def new_subject_key() -> bytes:
    return AESGCM.generate_key(bit_length=_KEY_BYTES * 8)


def body_context(node_id: str, request_id: str, kind: str, key_id: str) -> bytes:
    """The associated data binding a sealed body to its row."""
    parts = ("renkei-audit-body/2", node_id, request_id, kind, key_id)
    return "\n".join(parts).encode("utf-8")


def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION_BYTE + nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def open_sealed(key: bytes, sealed: bytes, context: bytes) -> bytes:
    """The plaintext of ``sealed``; raises :class:`BodyStoreError` if it does not open."""
    if len(key) != _KEY_BYTES:
        raise BodyStoreError("a subject key has the wrong length")
    if sealed[:1] != _VERSION_BYTE or len(sealed) < 1 + _NONCE_BYTES + 16:
        raise BodyStoreError("a logged body is not in the sealed format version 2")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, context)
    except InvalidTag as exc:
        raise BodyStoreError("a logged body does not open with its subject key") from exc
