"""The standalone audit verifier: reads export bundles, needs only them and the anchor.

It shares no code with the node's audit writer beyond the hashing rules
(:mod:`gateway.audit.hashing` and :mod:`member_registry.merkle`), so a bug in
the writer cannot hide itself from the verifier.
"""

from gateway.auditor.bundle import Bundle, read_bundle
from gateway.auditor.errors import AuditorError, BundleInvalid, VerificationFailed
from gateway.auditor.reconcile import ReconcileReport, reconcile
from gateway.auditor.subject import SubjectEntry, subject_report
from gateway.auditor.verify import VerifyReport, verify_bundles

__all__ = [
    "AuditorError",
    "Bundle",
    "BundleInvalid",
    "ReconcileReport",
    "SubjectEntry",
    "VerificationFailed",
    "VerifyReport",
    "read_bundle",
    "reconcile",
    "subject_report",
    "verify_bundles",
]
