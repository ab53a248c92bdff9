"""Check real answers of an API against its own OpenAPI document.

``Answers`` records what a test client got back, with the path template the
request was routed by; ``assert_conform`` validates each 2xx JSON body against
the schema the document gives for that operation, status and media type, and
``bare_schemas`` lists the 2xx bodies the document does not really describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from aiohttp.test_utils import TestClient

__all__ = ["Answer", "Answers", "assert_conform", "bare_schemas"]

_JSON_TYPES = ("application/json", "application/ld+json")


@dataclass(frozen=True)
class Answer:
    method: str
    template: str
    status: int
    content_type: str
    body: Any


@dataclass
class Answers:
    """A test client whose JSON answers are kept for validation."""

    client: TestClient[Any, Any]
    seen: list[Answer] = field(default_factory=list)

    async def call(
        self, method: str, template: str, url: str | None = None, **kwargs: Any
    ) -> Any:
        """Send ``method`` to ``url`` (default: the template itself); the answer's body."""
        response = await self.client.request(method, url or template, **kwargs)
        body = await response.json(content_type=None)
        assert 200 <= response.status < 300, (method, url or template, response.status, body)
        self.seen.append(Answer(method, template, response.status, response.content_type, body))
        return body


def _schema_of(document: dict[str, Any], answer: Answer) -> dict[str, Any]:
    operation = document["paths"][answer.template][answer.method.lower()]
    response = operation["responses"].get(str(answer.status))
    assert response is not None, f"{answer.method} {answer.template}: {answer.status} undocumented"
    content = response.get("content", {})
    assert answer.content_type in content, (
        f"{answer.method} {answer.template}: {answer.content_type} undocumented"
    )
    schema: dict[str, Any] = content[answer.content_type]["schema"]
    return schema


def assert_conform(document: dict[str, Any], answers: list[Answer]) -> None:
    """Every answer's body validates against the schema its operation documents."""
    problems = []
    for answer in answers:
        schema = _schema_of(document, answer)
        # The document's components travel along, so that $ref resolves.
        validator = jsonschema_rs.Draft202012Validator(
            {**schema, "components": document["components"]}
        )
        problems += [
            f"{answer.method} {answer.template} {answer.status}: {error.message}"
            f" at {list(error.instance_path)}"
            for error in validator.iter_errors(answer.body)
        ]
    assert problems == []


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def _described(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolved(document, schema)
    if "allOf" in schema:
        return any(_described(document, part) for part in schema["allOf"])
    kinds = schema.get("type")
    if kinds == "array":
        return "items" in schema and _described(document, schema["items"])
    if kinds == "object":
        return bool(schema.get("properties")) or isinstance(
            schema.get("additionalProperties"), dict
        )
    return bool(kinds) or "enum" in schema or "const" in schema


def bare_schemas(document: dict[str, Any]) -> list[str]:
    """The 2xx JSON bodies whose schema says no more than "an object" (or "an array")."""
    bare = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    if not status.startswith("2") or media not in _JSON_TYPES:
                        continue
                    if not _described(document, content.get("schema", {})):
                        bare.append(f"{method.upper()} {path} {status} {media}")
    return bare
