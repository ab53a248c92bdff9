"""JSON for signed and hashed documents: one canonical form, one strict reader.

Canonical form: the JSON Canonicalization Scheme, RFC 8785 (JCS). It is the
standard one (other implementations exist in many languages), its strings are
exactly ``json.dumps(..., ensure_ascii=False)`` (UTF-8, only ``"``, ``\\`` and
control characters escaped, lowercase ``\\u00xx``), keys sort by UTF-16 code
units and numbers follow ECMAScript's shortest round-trip form. Integers
outside the I-JSON safe range (RFC 7493 §2.2, ±(2^53 - 1)) are refused rather
than rounded, since a reader in another language would not keep them exact.

Strict reading: duplicate object keys are refused (RFC 8259 leaves them
undefined: Python keeps the last, other readers the first, so a signed
document with two ``method`` keys could mean two things), as are ``NaN`` and
``Infinity``, and text that is not UTF-8.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["JsonRefused", "canonical_json", "loads_strict"]

_MAX_SAFE_INTEGER = 2**53 - 1


class JsonRefused(ValueError):
    """A document cannot be written canonically, or read strictly."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 form of ``value`` as UTF-8 bytes."""
    parts: list[str] = []
    _write(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not representable in I-JSON
        raise JsonRefused("strings must be valid Unicode") from exc


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise JsonRefused(f"integer {value} is outside the I-JSON safe range")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise JsonRefused("object keys must be strings")
        out.append("{")
        keys = list(value)
        # ASCII keys sort the same by code point and by UTF-16 unit; skip re-encoding them.
        keys.sort(key=None if all(key.isascii() for key in keys) else _utf16)
        for index, key in enumerate(keys):
            if index:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise JsonRefused(f"{type(value).__name__} is not a JSON value")


# Escapes exactly '"', '\\' and U+0000..U+001F, with the short forms \b \t \n \f \r and
# lowercase \u00xx otherwise (RFC 8785 §3.2.2.2); json.dumps(ensure_ascii=False) uses it.
_string = json.encoder.encode_basestring


def _utf16(key: str) -> bytes:
    # RFC 8785 §3.2.3: sort by UTF-16 code units; big-endian bytes compare the same way.
    return key.encode("utf-16-be", "surrogatepass")


def _number(value: float) -> str:
    """ECMAScript Number::toString (RFC 8785 §3.2.2.3) from Python's shortest repr."""
    if not math.isfinite(value):
        raise JsonRefused("NaN and Infinity are not JSON numbers")
    if value == 0:
        return "0"  # -0 as well
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    exponent += len(digit_tuple) - len(digits)
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10^n
    prefix = "-" if sign else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return prefix + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{prefix}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def loads_strict(data: bytes | str) -> Any:
    """``json.loads`` that refuses duplicate keys, NaN/Infinity and non-UTF-8 text."""
    try:
        # Bytes must be UTF-8 (RFC 8259 §8.1); json.loads would also guess UTF-16 or 32.
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _DECODER.decode(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JsonRefused(f"not valid JSON: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonRefused(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not allowed")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
