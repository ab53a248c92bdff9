"""Sample information systems behind the sandbox's provider nodes.

- a FHIR patient service (the FHIR R4 examples shipped in ``data/fhir``),
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
            {"fullUrl": f"urn:renkei:{r['resourceType']}/{r.get('id', i)}", "resource": r}
            for i, r in enumerate(entries)
        ],
    }


def gtfs_feed_zip() -> bytes:
    folder = resources.files("gateway.sandbox").joinpath("data", "gtfs")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".txt"):
                archive.writestr(entry.name, entry.read_bytes())
    return buffer.getvalue()


def backend_app() -> web.Application:
    patients = fhir_patients()
    feed = gtfs_feed_zip()
    app = web.Application(client_max_size=1024**3)

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
        return web.json_response(document, headers={"X-Echo": "yes"})

    app.router.add_get("/fhir/Patient/{id}", patient)
    app.router.add_get("/fhir/Patient/{id}/$everything", everything)
    app.router.add_get("/fhir/Patient/{id}/$malformed", malformed)
    app.router.add_get("/gtfs/feed.zip", gtfs_zip)
    app.router.add_get("/gtfs/{name}.txt", gtfs_file)
    app.router.add_route("*", "/echo{tail:.*}", echo)
    return app
