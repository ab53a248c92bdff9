"""Rebuild ``policies/fhir_required.json``: the elements each FHIR resource type requires.

Read from the models of ``fhir.resources`` (its R4B package, the R4-compatible release it
ships; see docs/policies.md). Run after upgrading that library::

    python -m tests.tools.fhir_required > policies/fhir_required.json
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

from fhir.resources import R4B
from fhir.resources.R4B.resource import Resource


def required_elements() -> dict[str, list[list[str]]]:
    """Resource type -> groups of JSON member names, one of each group required."""
    table: dict[str, list[list[str]]] = {}
    for module in pkgutil.iter_modules(R4B.__path__):
        if module.name.startswith("_") or module.name in ("fhirtypes", "fhirtypesvalidators"):
            continue
        loaded = importlib.import_module(f"{R4B.__name__}.{module.name}")
        classes = [
            value
            for value in vars(loaded).values()
            if isinstance(value, type)
            and issubclass(value, Resource)
            and value.__module__ == loaded.__name__
            and value.__name__ not in ("Resource", "DomainResource")
        ]
        if len(classes) != 1:
            continue
        cls: Any = classes[0]
        groups: dict[str, list[str]] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("one_of_many_required"):
                groups.setdefault(str(extra["one_of_many"]), []).append(alias)
            elif field.is_required() or extra.get("element_required"):
                groups[alias] = [alias]
        if groups:
            table[cls.__name__] = sorted(sorted(group) for group in groups.values())
    return dict(sorted(table.items()))


if __name__ == "__main__":
    print(json.dumps(required_elements(), indent=1, sort_keys=True))
