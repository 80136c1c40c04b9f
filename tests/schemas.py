"""Validate real ``-o json`` documents against the schema files in docs/schemas/.

Every document names its schema (``"schema": "secretkit.<output>/v<N>"``); the file
is ``docs/schemas/secretkit.<output>.v<N>.json`` (``secretkit.cli.output.schema_path``).
Schemas reference each other by file name, resolved from that directory.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from secretkit.cli.output import schema_path

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "docs" / "schemas"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def schema_for(doc: dict[str, Any]) -> dict[str, Any]:
    """The schema file the document names (a KeyError/FileNotFoundError if none)."""
    path = REPO / schema_path(doc["schema"])
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def validate_document(doc: Any) -> str:
    """Validate ``doc`` against the schema it names; return that schema's name."""
    assert isinstance(doc, dict) and isinstance(doc.get("schema"), str), doc
    schema = schema_for(doc)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    return str(doc["schema"])


def one_document(stdout: str) -> dict[str, Any]:
    """stdout must be exactly one JSON document (nothing before or after it)."""
    doc = json.loads(stdout)
    assert isinstance(doc, dict), stdout
    return doc
