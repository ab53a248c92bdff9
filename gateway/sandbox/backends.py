"""Sample information systems behind the sandbox's provider nodes.

- a FHIR patient service (the FHIR R4 examples shipped in ``data/fhir``), with
  routes that behave like a careless or hostile backend (``$mixed``: Bundles
  about several patients; ``$other``: a patient other than the one asked for;
  ``$leaky``: data in meta, extensions, URLs and headers), to show what a
  provider node releases of them,
- a GTFS timetable feed (``data/gtfs``, served as a zip or file by file),
- an echo service that describes the request it received (for integrators).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import zipfile
from importlib import resources
from typing import Any

from aiohttp import web

__all__ = ["backend_app", "fhir_patients", "gtfs_feed_zip"]

FHIR_JSON = "application/fhir+json"


def _data_text(*parts: str) -> str:
    return resources.files("gateway.sandbox").joinpath("data", *parts).read_text("utf-8")


def fhir_patients() -> dict[str, dict[str, Any]]:
    """The example patients by id."""
    patients = {}
    folder = resources.files("gateway.sandbox").joinpath("data", "fhir")
    for entry in folder.iterdir():
        if entry.name.startswith("Patient-") and entry.name.endswith(".json"):
            resource = json.loads(entry.read_text("utf-8"))
            patients[str(resource["id"])] = resource
    return patients


def _everything(patient: dict[str, Any]) -> dict[str, Any]:
    """A Bundle with the patient, an allergy and an observation about them."""
    reference = f"Patient/{patient['id']}"
    allergy = json.loads(_data_text("fhir", "AllergyIntolerance-example.json"))
    allergy["patient"] = {"reference": reference}
    observation = json.loads(_data_text("fhir", "Observation-example.json"))
    observation["subject"] = {"reference": reference}
    entries = [copy.deepcopy(patient), allergy, observation]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in entries
        ],
    }


def _other_patient(patient_id: str) -> str:
    return "pat1" if patient_id != "pat1" else "pat2"


def _mixed(patient: dict[str, Any], other: dict[str, Any], kind: str) -> dict[str, Any]:
    """A Bundle of ``kind`` about the patient, another patient and a third person (the
    consent of Patient/f001), as a backend that mixes up its query results sends it."""
    records = [*_everything(patient)["entry"], *_everything(other)["entry"]]
    resources = [copy.deepcopy(entry["resource"]) for entry in records]
    for resource in resources:
        if resource["resourceType"] != "Patient":
            owner = resource.get("patient") or resource.get("subject")
            resource["id"] = f"{resource['id']}-{owner['reference'].rsplit('/', 1)[-1]}"
    resources.append(json.loads(_data_text("fhir", "Consent-consent-example-basic.json")))
    resources.append({"resourceType": "Organization", "id": "hosp-b", "name": "Hospital B"})
    entries: list[dict[str, Any]] = []
    for resource in resources:
        entry: dict[str, Any] = {
            "fullUrl": f"{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }
        if kind == "transaction":
            entry["request"] = {"method": "PUT", "url": entry["fullUrl"]}
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": entries}
    if kind == "searchset":
        bundle["total"] = len(entries)
    if kind == "document":
        bundle["identifier"] = {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1"}
        bundle["timestamp"] = "2024-01-01T00:00:00Z"
    return bundle


def _leaky(patient: dict[str, Any]) -> dict[str, Any]:
    """The patient with data where a filter might not look: meta, extensions, URLs."""
    leaky = copy.deepcopy(patient)
    leaky["meta"] = {
        "tag": [{"system": "http://example.org/diagnosis", "code": "HIV"}],
        "extension": [{"url": "http://example.org/ssn", "valueString": "123-45-6789"}],
    }
    leaky["extension"] = [{"url": "http://example.org/ssn", "valueString": "123-45-6789"}]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "self", "url": "http://b.internal/Patient?ssn=123-45-6789"}],
        "entry": [
            {"fullUrl": "http://b.internal/Patient?ssn=123-45-6789", "resource": leaky}
        ],
    }


_LEAKY_HEADERS = {
    "Set-Cookie": "session=backend-session-of-123-45-6789",
    "Link": '<http://b.internal/Patient?ssn=123-45-6789>; rel="self"',
    "Location": "http://b.internal/Patient/123-45-6789",
    "Content-Disposition": 'attachment; filename="123-45-6789.json"',
    "X-Patient-SSN": "123-45-6789",
    "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
}


def gtfs_feed_zip() -> bytes:
    folder = resources.files("gateway.sandbox").joinpath("data", "gtfs")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".txt"):
                archive.writestr(entry.name, entry.read_bytes())
    return buffer.getvalue()


@web.middleware
async def _subject_checked(request: web.Request, handler: Any) -> web.StreamResponse:
    """A patient's records only for a request the node decided consent for: the node
    forwards the subject (``Renkei-Subject``, covered by the consumer's signature)."""
    if request.path.startswith("/fhir/Patient/"):
        named = request.path.split("/")[3]
        if request.headers.getall("Renkei-Subject", []) != [named]:
            body = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "forbidden",
                           "diagnostics": "Renkei-Subject must name the patient of the path"}],
            }
            return web.Response(status=403, body=json.dumps(body).encode(),
                                content_type=FHIR_JSON)
    response: web.StreamResponse = await handler(request)
    return response


def backend_app() -> web.Application:
    patients = fhir_patients()
    feed = gtfs_feed_zip()
    app = web.Application(client_max_size=1024**3, middlewares=[_subject_checked])

    def fhir(document: dict[str, Any], status: int = 200) -> web.Response:
        return web.Response(
            status=status, body=json.dumps(document).encode(), content_type=FHIR_JSON
        )

    async def patient(request: web.Request) -> web.Response:
        found = patients.get(request.match_info["id"])
        if found is None:
            return fhir(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "not-found"}],
                },
                404,
            )
        return fhir(found)

    async def everything(request: web.Request) -> web.Response:
        found = patients.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound()
        return fhir(_everything(found))

    async def mixed(request: web.Request) -> web.Response:
        found = patients.get(request.match_info["id"])
        kind = request.query.get("type", "searchset")
        if found is None or kind not in ("searchset", "transaction", "document", "collection"):
            raise web.HTTPNotFound()
        other = patients[_other_patient(str(found["id"]))]
        return fhir(_mixed(found, other, kind))

    async def other(request: web.Request) -> web.Response:
        if request.match_info["id"] not in patients:
            raise web.HTTPNotFound()
        return fhir(patients[_other_patient(request.match_info["id"])])

    async def leaky(request: web.Request) -> web.Response:
        found = patients.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound()
        if request.query.get("status") == "204":
            return web.Response(status=204, headers=_LEAKY_HEADERS)
        response = fhir(_leaky(found))
        response.headers.extend(_LEAKY_HEADERS)
        return response

    async def malformed(request: web.Request) -> web.Response:
        """Bodies no node may pass on unfiltered, to show consent failing closed."""
        kind = request.query.get("kind", "")
        if kind == "duplicate-keys":
            body = b'{"resourceType": "Patient", "name": [], "name": [{"text": "x"}]}'
            return web.Response(body=body, content_type=FHIR_JSON)
        if kind == "html":
            return web.Response(
                text="<html><body>Peter Chalmers</body></html>", content_type="text/html"
            )
        if kind == "latin1":
            return web.Response(
                body='{"resourceType": "Patient", "name": "Jos\u00e9"}'.encode("latin-1"),
                headers={"Content-Type": "application/fhir+json; charset=iso-8859-1"},
            )
        if kind == "deep":
            body = ("[" * 200 + "]" * 200).encode()
            return web.Response(body=body, content_type=FHIR_JSON)
        if kind == "gzip-bomb":
            payload = gzip.compress(
                b'{"resourceType": "Patient", "text": "' + b"A" * 50_000_000 + b'"}'
            )
            return web.Response(
                body=payload,
                headers={"Content-Type": FHIR_JSON, "Content-Encoding": "gzip"},
            )
        raise web.HTTPNotFound()

    async def gtfs_zip(_: web.Request) -> web.Response:
        return web.Response(body=feed, content_type="application/zip")

    async def gtfs_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        folder = resources.files("gateway.sandbox").joinpath("data", "gtfs")
        names = {entry.name for entry in folder.iterdir()}
        if f"{name}.txt" not in names:
            raise web.HTTPNotFound()
        return web.Response(
            body=folder.joinpath(f"{name}.txt").read_bytes(), content_type="text/csv"
        )

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        document = {
            "method": request.method,
            "path": request.raw_path.split("?", 1)[0],
            "query": request.raw_path.partition("?")[2],
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_length": len(body),
            "body": body.decode("utf-8", "replace") if len(body) <= 65536 else None,
        }
        headers = {"X-Echo": "yes"}
        if "set-cookie" in request.query:
            headers["Set-Cookie"] = "session=echo-backend"
        return web.json_response(document, headers=headers)

    app.router.add_get("/fhir/Patient/{id}", patient)
    app.router.add_get("/fhir/Patient/{id}/$everything", everything)
    app.router.add_get("/fhir/Patient/{id}/$malformed", malformed)
    app.router.add_get("/fhir/Patient/{id}/$mixed", mixed)
    app.router.add_get("/fhir/Patient/{id}/$other", other)
    app.router.add_get("/fhir/Patient/{id}/$leaky", leaky)
    app.router.add_get("/gtfs/feed.zip", gtfs_zip)
    app.router.add_get("/gtfs/{name}.txt", gtfs_file)
    app.router.add_route("*", "/echo{tail:.*}", echo)
    return app
