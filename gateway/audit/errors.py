"""Errors of the node's audit log (writer side).

::

    AuditError                  audit.error
    ├── CheckpointError         audit.checkpoint_failed
    ├── WitnessRefused          audit.witness_refused
    ├── BodyStoreError          audit.body_store_failed
    ├── ArchiveError            audit.archive_failed
    └── ExportError             audit.export_failed

The standalone verifier has its own tree in :mod:`gateway.auditor.errors`.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "AuditError",
    "BodyStoreError",
    "CheckpointError",
    "ExportError",
    "WitnessRefused",
]


class AuditError(Exception):
    code = "audit.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CheckpointError(AuditError):
    code = "audit.checkpoint_failed"


class WitnessRefused(AuditError):
    code = "audit.witness_refused"


class BodyStoreError(AuditError):
    code = "audit.body_store_failed"


class ArchiveError(AuditError):
    code = "audit.archive_failed"


class ExportError(AuditError):
    code = "audit.export_failed"
