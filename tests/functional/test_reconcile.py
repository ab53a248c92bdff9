"""``renkei audit reconcile`` on an honest federation reports nothing (both nodes
log what the exchange carried: the subject, also when located by path, and the
provider's signed refusals); on one-sided or altered rows it reports each kind."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.auditor import read_bundle
from gateway.auditor.reconcile import Difference, reconcile
from gateway.cli import main
from gateway.sandbox import demo
from tests.functional.sandbox_helpers import client_headers, node, sandbox_process

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"


async def _more_traffic(document: dict[str, Any]) -> None:
    """Cases the demo leaves out: a subject located only by the path, a patient
    nobody consented for, a service that does not exist."""
    hospital_a = node(document, HOSP_A)
    base = f"{hospital_a['client_url']}/r1"
    headers = {**client_headers(document, CONSUMER), "Renkei-Purpose": "treatment",
               "Accept": "application/fhir+json"}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for target in (
            f"{PATIENTS}/Patient/example",  # no Renkei-Subject: the path names the patient
            f"{PATIENTS}/Patient/nobody-consented",
            "RENKEI/GOV/HOSP-B/EHR/no-such-service/x",
        ):
            async with session.get(
                f"{base}/{target}", headers={**headers, "X-Road-Id": str(uuid.uuid4())}
            ) as response:
                await response.read()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Both hospitals' exported logs after the default sandbox's demo traffic."""
    directory = tmp_path_factory.mktemp("reconcile")
    with sandbox_process(directory / "sandbox") as document:
        asyncio.run(demo._demo(document))
        asyncio.run(_more_traffic(document))
        exported = {}
        for node_id in (HOSP_A, HOSP_B):
            out = directory / f"{node_id.split('/')[2]}.tar.gz"
            config = str(node(document, node_id)["config"])
            assert main(["audit", "export", "--config", config, "--out", str(out)]) == 0
            exported[node_id] = out
        yield exported


def test_an_honest_federation_reconciles_to_zero(
    bundles: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["audit", "reconcile", str(bundles[HOSP_A]), str(bundles[HOSP_B])])
    report = json.loads(capsys.readouterr().out)
    assert report["differences"] == []
    assert (report["only_consumer"], report["only_provider"]) == ([], [])
    assert code == 0
    assert report["matched"] >= 7  # the demo's exchanges and refusals, and the cases above


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_bundle(path).json_lines("rows.jsonl"))


def test_each_kind_of_one_sided_or_altered_row_is_found(bundles: dict[str, Path]) -> None:
    consumer, provider = _rows(bundles[HOSP_A]), _rows(bundles[HOSP_B])
    assert reconcile(consumer, HOSP_A, provider, HOSP_B).ok

    def relayed(rows: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["role"] == role and r["request_signature"] is not None]

    served = next(r for r in relayed(provider, "provider") if r["subject"] and r["status"] == 200)
    refused = next(r for r in relayed(provider, "provider") if r["error_code"])
    by_id = {r["message_id"]: r for r in relayed(consumer, "consumer")}

    def without(rows: list[dict[str, Any]], gone: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in rows if r is not gone]

    def altered(rows: list[dict[str, Any]], row: dict[str, Any], **fields: Any) -> list[Any]:
        return [{**r, **fields} if r is row else r for r in rows]

    cases = {
        "only_provider": (without(consumer, by_id[served["message_id"]]), provider),
        "only_consumer": (consumer, without(provider, served)),
        "status": (consumer, altered(provider, served, status=500)),
        "subject": (consumer, altered(provider, served, subject="someone-else")),
        "response_signature": (consumer, altered(provider, refused, response_signature=None)),
        "response_body_sha256": (altered(consumer, by_id[served["message_id"]],
                                         response_body_sha256="x" * 43), provider),
    }  # fmt: skip
    for kind, (a_rows, b_rows) in cases.items():
        report = reconcile(a_rows, HOSP_A, b_rows, HOSP_B)
        assert not report.ok, kind
        if kind == "only_provider":
            assert report.only_provider == [served["message_id"]]
        elif kind == "only_consumer":
            assert report.only_consumer == [served["message_id"]]
        else:
            assert [dataclasses.astuple(d)[:2] for d in report.differences] == [
                (served["message_id"] if kind != "response_signature" else refused["message_id"],
                 kind)
            ], kind
            assert all(isinstance(d, Difference) for d in report.differences)
