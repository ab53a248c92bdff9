"""``renkei audit verify``: check bundles with nothing but themselves and the anchor.

In order, stopping at the first problem (:class:`VerificationFailed` says
which row and what is wrong):

1. the global configuration in the last bundle verifies against the anchor;
2. bundles (archives, then the export) follow each other: seq ranges meet and
   each archive names the previous one's manifest digest;
3. every row: its node, its seq (no gap, no repeat, no reordering), its
   ``prev_hash`` and its ``entry_hash`` recomputed from its fields;
4. every checkpoint: signed by an auth certificate that chains to a CA of the
   configuration and names the node; its root equals the RFC 6962 root of the
   rows it covers; it covers no row the bundle lacks; its RFC 3161 token
   verifies over the signed checkpoint; its witness cosignature verifies with
   the registry's certificate from the anchor;
5. optionally, the log extends what the witness last cosigned (a state fetched
   from the registry): a log rolled back or truncated behind the checkpoints
   it shows still cannot match that.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from certs import jws
from certs.errors import CertificateError, CertsError
from certs.identifiers import IdentifierError
from certs.keys import fingerprint
from certs.profiles import node_id_of
from certs.timestamps import verify_timestamp_token
from certs.validation import verify_certificate
from gateway.audit.hashing import GENESIS_HASH, entry_hash
from gateway.auditor.bundle import Bundle
from gateway.auditor.errors import VerificationFailed
from member_registry.anchor import Anchor
from member_registry.errors import RegistryBaseError
from member_registry.globalconf import GlobalConf
from member_registry.merkle import leaf_hash, root_from_leaf_hashes
from member_registry.signing import claimed_time, verify_global_conf

__all__ = ["ROW_FIELDS", "VerifyReport", "verify_bundles", "verify_cosignature"]

# The fields of a chained row, entry_hash excluded (the chain rule of DESIGN §6);
# rows of format 2 on also carry "format" (gateway/audit/hashing.py).
ROW_FIELDS = (
    "node_id", "seq", "logged_at", "role", "message_id", "request_id", "client", "service",
    "method", "path", "peer_node", "user_id", "purpose", "subject", "request_hash",
    "request_body_sha256", "request_signature", "response_body_sha256", "response_signature",
    "status", "error_code", "consent", "prev_hash",
)  # fmt: skip
CHECKPOINT_TYPE = "renkei-checkpoint+jws"
COSIGNATURE_TYPE = "renkei-witness-cosignature+jws"


@dataclass
class VerifyReport:
    node_id: str
    first_seq: int
    last_seq: int
    rows: int
    checkpoints: int
    last_checkpoint_size: int
    timestamped_until: datetime | None
    warnings: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "node": self.node_id,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "rows": self.rows,
            "checkpoints": self.checkpoints,
            "last_checkpoint_size": self.last_checkpoint_size,
            "timestamped_until": self.timestamped_until.isoformat()
            if self.timestamped_until
            else None,
            "warnings": self.warnings,
        }


def _fail(code: str, message: str, seq: int | None = None) -> VerificationFailed:
    return VerificationFailed(f"auditor.{code}", message, seq=seq)


def _configuration(bundle: Bundle, anchor: Anchor) -> GlobalConf:
    token = bundle.text("globalconf.jws").strip()
    try:
        # Judged as of its own generation time: an export is read long after the
        # configuration's ten-minute validity, and only its signature matters here.
        return verify_global_conf(token, anchor, now=claimed_time(token, "generated_at"))
    except (RegistryBaseError, ValueError) as exc:
        raise _fail("configuration_invalid", f"the global configuration: {exc}") from exc


def _check_sequence(bundles: Sequence[Bundle], allow_partial: bool) -> None:
    node = bundles[0].node_id
    named = bundles[0].manifest.get("previous_archive_sha256")
    if named is not None and not allow_partial:
        # The archive before the first bundle was left out (deleted, or not given).
        raise _fail(
            "archive_sequence",
            f"{bundles[0].path} follows an archive (manifest SHA-256 {named}) that was not "
            "given: pass every archive in order, or --partial to check from here on",
            bundles[0].first_seq,
        )
    for previous, current in itertools.pairwise(bundles):
        if current.node_id != node:
            raise _fail("archive_sequence", f"{current.path} is for node {current.node_id}")
        if current.first_seq != previous.last_seq + 1:
            raise _fail(
                "archive_sequence",
                f"{current.path} starts at row {current.first_seq}, "
                f"{previous.path} ends at row {previous.last_seq}",
                current.first_seq,
            )
        linked = current.manifest.get("previous_archive_sha256")
        if linked is not None and linked != previous.manifest_sha256:
            raise _fail(
                "archive_sequence",
                f"{current.path} names a previous archive that is not {previous.path}",
            )


def _prior_leaves(bundle: Bundle) -> list[str]:
    lines = bundle.text("prior_leaves.txt").splitlines()
    prior = [line.strip() for line in lines if line.strip()]
    if len(prior) != bundle.first_seq - 1:
        raise _fail(
            "chain_broken",
            f"the bundle starts at row {bundle.first_seq} but carries {len(prior)} prior leaves",
            bundle.first_seq,
        )
    return prior


def _check_rows(bundles: Sequence[Bundle], leaves: list[str]) -> int:
    """Check every row's link and hash; append its entry hash to ``leaves``."""
    node = bundles[0].node_id
    count = 0
    for bundle in bundles:
        for row in bundle.json_lines("rows.jsonl"):
            expected_seq = len(leaves) + 1
            seq = row.get("seq")
            where = seq if isinstance(seq, int) else expected_seq
            # Bundles exported before rows carried a format have no "format" key.
            if set(row) - {"format"} != {*ROW_FIELDS, "entry_hash"}:
                raise _fail("row_invalid", "the row does not have the chained fields", where)
            if seq != expected_seq:
                missing = isinstance(seq, int) and seq > expected_seq
                what = f"row {expected_seq} is missing" if missing else "the row is out of order"
                raise _fail("chain_broken", f"expected row {expected_seq}, found {seq}: {what}",
                            where)
            if row["node_id"] != node:
                raise _fail("row_invalid", f"the row belongs to node {row['node_id']}", seq)
            previous = leaves[-1] if leaves else GENESIS_HASH
            if row["prev_hash"] != previous:
                raise _fail("chain_broken", "prev_hash is not the entry_hash of the row before",
                            seq)
            try:
                computed = entry_hash(previous, {k: v for k, v in row.items() if k != "entry_hash"})
            except ValueError as exc:  # a format this verifier has no rule for
                raise _fail("row_invalid", str(exc), seq) from exc
            if computed != row["entry_hash"]:
                raise _fail("row_invalid", "the row's contents do not give its entry_hash", seq)
            leaves.append(str(row["entry_hash"]))
            count += 1
        if len(leaves) != bundle.last_seq:
            raise _fail("chain_broken",
                        f"the manifest says the rows end at {bundle.last_seq}, "
                        f"they end at {len(leaves)}", len(leaves) + 1)
    return count


def _checkpoint(token: str, now: datetime) -> tuple[x509.Certificate, dict[str, Any]]:
    """The checkpoint's signer certificate (from ``x5c``, named by ``kid``) and its
    payload, verified with that certificate's key; whether the certificate is
    trusted is ``_check_certificate``'s question."""
    try:
        signed = jws.parse(token, typ=CHECKPOINT_TYPE, header={"kid", "x5c"})
        certificate = jws.x5c_certificates(signed.header)[0]
        if signed.header.get("kid") != fingerprint(certificate):
            raise _fail("checkpoint_invalid", "the checkpoint's kid does not name its certificate")
        return certificate, signed.verify(jws.PinnedKey(certificate), now=now).payload
    except jws.SignatureInvalid as exc:
        raise _fail("checkpoint_invalid", f"a checkpoint: {exc}") from exc


def _check_certificate(certificate: x509.Certificate, conf: GlobalConf, node: str,
                       at: datetime) -> None:
    try:
        verify_certificate(certificate, trust_roots=conf.trust_roots(), now=at, profile="auth")
        named = str(node_id_of(certificate))
    except (CertificateError, IdentifierError) as exc:
        raise _fail("checkpoint_invalid", f"the checkpoint's certificate: {exc}") from exc
    if named != node:
        raise _fail("checkpoint_invalid", f"the checkpoint is signed by {named}, not {node}")


def verify_cosignature(
    token: str, anchor: Anchor, *, node: str, tree_size: int, root: str, now: datetime
) -> dict[str, Any]:
    """Check a witness cosignature against the anchor's registry certificates."""
    try:
        payload = jws.verify(token, typ=COSIGNATURE_TYPE,
                             trust=jws.KeyById(anchor.verification_certificates), now=now).payload
    except jws.SignatureInvalid as exc:
        raise _fail("cosignature_invalid", f"the cosignature: {exc}") from exc
    if (payload.get("node"), payload.get("tree_size"), payload.get("root")) != (
        node, tree_size, root
    ):
        raise _fail("cosignature_invalid", f"the cosignature is for another tree than "
                    f"{tree_size} rows of {node}")
    return payload


def _roots(leaves: list[str]) -> list[bytes]:
    return [leaf_hash(bytes.fromhex(h)) for h in leaves]


def verify_bundles(
    bundles: Sequence[Bundle],
    *,
    anchor: Anchor,
    now: datetime,
    allow_unstamped: bool = False,
    allow_uncosigned: bool = False,
    witness_state: dict[str, Any] | None = None,
    allow_partial: bool = False,
) -> VerifyReport:
    """Verify ``bundles`` (archives in order, then an export); raise at the first problem.

    ``allow_partial`` accepts a first bundle that follows an archive not given
    (its rows before are then known only by their leaves).
    """
    if not bundles:
        raise _fail("chain_broken", "no bundle to verify")
    conf = _configuration(bundles[-1], anchor)
    _check_sequence(bundles, allow_partial)
    node = bundles[0].node_id
    leaves = _prior_leaves(bundles[0])
    rows = _check_rows(bundles, leaves)
    leaf_hashes = _roots(leaves)
    report = VerifyReport(node, bundles[0].first_seq, bundles[-1].last_seq, rows, 0, 0, None)
    checkpoints = [c for b in bundles for c in b.json_lines("checkpoints.jsonl")]
    seen: set[int] = set()
    last: dict[str, Any] | None = None
    for entry in checkpoints:
        payload = _check_checkpoint(
            entry, conf, anchor, node, leaf_hashes, now, allow_unstamped, report
        )
        size = int(payload["tree_size"])
        if size in seen:
            continue  # the same checkpoint in two archives
        seen.add(size)
        if last is None or size > int(last["payload"]["tree_size"]):
            last = {"payload": payload, "entry": entry}
        report.checkpoints += 1
    if last is None:
        raise _fail("no_checkpoint", "no signed checkpoint covers any row of the bundle")
    size = int(last["payload"]["tree_size"])
    report.last_checkpoint_size = size
    if size < report.first_seq:
        raise _fail("no_checkpoint", "no signed checkpoint covers the exported rows")
    if last["entry"].get("cosignature") is None:
        message = f"the latest checkpoint (tree size {size}) has no witness cosignature"
        if not allow_uncosigned:
            raise _fail("not_cosigned", message)
        report.warnings.append(message)
    if size < len(leaves):
        report.warnings.append(f"rows {size + 1}..{len(leaves)} are not yet covered by a "
                               "checkpoint")
    if witness_state is not None:
        _check_witness_state(witness_state, anchor, node, leaf_hashes, now)
    return report


def _check_checkpoint(entry: dict[str, Any], conf: GlobalConf, anchor: Anchor, node: str,
                      leaf_hashes: list[bytes], now: datetime, allow_unstamped: bool,
                      report: VerifyReport) -> dict[str, Any]:
    signed = entry.get("signed")
    if not isinstance(signed, str):
        raise _fail("checkpoint_invalid", "a checkpoint line has no signed checkpoint")
    certificate, payload = _checkpoint(signed, now)
    try:
        size = int(payload["tree_size"])
        root = str(payload["root"])
        issued = datetime.fromisoformat(str(payload["issued_at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail("checkpoint_invalid", "a checkpoint's payload is malformed") from exc
    what = f"the checkpoint over {size} rows signed at {payload['issued_at']}"
    if payload.get("node") != node or payload.get("format") != "renkei-checkpoint/1":
        raise _fail("checkpoint_invalid", f"{what} is not a checkpoint of {node}")
    _check_certificate(certificate, conf, node, issued)
    if size > len(leaf_hashes):
        raise _fail("truncated", f"{what} covers rows up to {size}, the log ends at "
                    f"{len(leaf_hashes)}: the tail was removed", len(leaf_hashes) + 1)
    if root_from_leaf_hashes(leaf_hashes[:size]).hex() != root:
        raise _fail("checkpoint_mismatch", f"the rows do not give the root of {what}: "
                    "a row up to it was changed, added or removed after it was signed")
    _check_timestamp(entry, signed, conf, now, allow_unstamped, what, report)
    cosignature = entry.get("cosignature")
    if cosignature is not None:
        verify_cosignature(str(cosignature), anchor, node=node, tree_size=size, root=root,
                           now=now)
    return payload


def _check_timestamp(entry: dict[str, Any], signed: str, conf: GlobalConf, now: datetime,
                     allow_unstamped: bool, what: str, report: VerifyReport) -> None:
    token = entry.get("timestamp_token")
    if token is None:
        if not allow_unstamped:
            raise _fail("not_timestamped", f"{what} is not time-stamped")
        report.warnings.append(f"{what} is not time-stamped")
        return
    digest = hashlib.sha256(signed.encode("ascii")).digest()
    try:
        stamped = verify_timestamp_token(
            base64.b64decode(token), digest=digest, trust_roots=conf.trust_roots(), now=now
        )
    except (CertsError, ValueError) as exc:
        raise _fail("timestamp_invalid", f"{what}: {exc}") from exc
    if report.timestamped_until is None or stamped > report.timestamped_until:
        report.timestamped_until = stamped


def _check_witness_state(state: dict[str, Any], anchor: Anchor, node: str,
                         leaf_hashes: list[bytes], now: datetime) -> None:
    try:
        size, root, token = int(state["tree_size"]), str(state["root"]), str(state["cosignature"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail("witness_mismatch", "the witness state is malformed") from exc
    verify_cosignature(token, anchor, node=node, tree_size=size, root=root, now=now)
    if size > len(leaf_hashes):
        raise _fail("witness_mismatch", f"the witness cosigned {size} rows, the log has only "
                    f"{len(leaf_hashes)}: truncated or rolled back", len(leaf_hashes) + 1)
    if root_from_leaf_hashes(leaf_hashes[:size]).hex() != root:
        raise _fail("witness_mismatch", f"the first {size} rows are not those the witness "
                    "cosigned: the log was rewritten or rolled back")
