"""Schemathesis hooks for ``make schemathesis`` (loaded through ``SCHEMATHESIS_HOOKS``).

``POST /catalogue/publish`` takes a compact JWS as ``application/jose``, a media type
schemathesis cannot serialise by itself: the generated string is sent as its bytes.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/jose")
def jose(_: Any, value: Any) -> bytes:
    return str(value).encode("utf-8", "replace")
