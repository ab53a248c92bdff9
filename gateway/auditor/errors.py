"""Errors of the standalone verifier.

::

    AuditorError                    auditor.error
    ├── BundleInvalid               auditor.bundle_invalid
    └── VerificationFailed          (code given per problem, see below)

:class:`VerificationFailed` carries one of these codes and, where the problem
is in a row, its ``seq``:

    auditor.configuration_invalid   the bundle's global configuration does not verify
    auditor.row_invalid             a row's contents do not give its entry_hash
    auditor.chain_broken            a seq is missing, repeated or out of order, or prev_hash differs
    auditor.archive_sequence        archives are not in sequence or not linked by digest
    auditor.checkpoint_invalid      a checkpoint's signature or certificate is not acceptable
    auditor.checkpoint_mismatch     the rows do not give the root a checkpoint signed
    auditor.truncated               a checkpoint covers rows the bundle does not have
    auditor.no_checkpoint           no checkpoint covers the exported rows
    auditor.not_timestamped         a checkpoint has no time-stamp token
    auditor.timestamp_invalid       a time-stamp token does not verify
    auditor.not_cosigned            the latest checkpoint has no witness cosignature
    auditor.cosignature_invalid     a witness cosignature does not verify or names another tree
    auditor.witness_mismatch        the log differs from what the witness last cosigned
"""

from __future__ import annotations

__all__ = ["AuditorError", "BundleInvalid", "VerificationFailed"]


class AuditorError(Exception):
    code = "auditor.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BundleInvalid(AuditorError):
    code = "auditor.bundle_invalid"


class VerificationFailed(AuditorError):
    """The first problem found; ``seq`` names the row when there is one."""

    def __init__(self, code: str, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.seq = seq

    def __str__(self) -> str:
        where = f"row {self.seq}: " if self.seq is not None else ""
        return f"{self.code}: {where}{self.message}"
