"""Checking OpenLineage events against the spec's JSON Schemas vendored under `openlineage/`.

A `referencing` registry resolves every `$ref` from the vendored files (no network); each
facet is validated against the schema its own `_schemaURL` names.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from floe_runtime.runtime.lineage import PRODUCER

SCHEMAS = Path(__file__).parent / "openlineage"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()
FORMATS = FormatChecker()


@FORMATS.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value)
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


def validate(instance: Any, ref: str) -> None:
    """Validate `instance` against the schema at `ref` (an `$id` plus a JSON pointer)."""
    Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=FORMATS).validate(
        instance
    )


def facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, key, facet) of every facet in an event."""
    yield from (("run", k, v) for k, v in (event["run"].get("facets") or {}).items())
    yield from (("job", k, v) for k, v in (event["job"].get("facets") or {}).items())
    for side in ("inputs", "outputs"):
        for ds in event.get(side) or []:
            yield from (("dataset", k, v) for k, v in (ds.get("facets") or {}).items())
            for extra in ("inputFacets", "outputFacets"):
                yield from ((extra, k, v) for k, v in (ds.get(extra) or {}).items())


#: Which kind of facet each facet schema defines (the `$ref` of its first `allOf`).
_KINDS = {
    "run": "RunFacet",
    "job": "JobFacet",
    "dataset": "DatasetFacet",
    "inputFacets": "InputDatasetFacet",
    "outputFacets": "OutputDatasetFacet",
}


def check_event(event: dict[str, Any]) -> set[str]:
    """Validate an event and each of its facets; the facet keys seen."""
    validate(event, "https://openlineage.io/spec/2-0-2/OpenLineage.json")
    validate(event, RUN_EVENT)
    seen = set()
    for where, key, facet in facets(event):
        url = facet["_schemaURL"]
        document, _, pointer = url.partition("#")
        # Vendored, so the facet's own schema is the one checked (no network).
        assert REGISTRY.contents(document), url
        validate(facet, url)
        # The key is the one the facet schema defines, and the facet is where the spec puts it.
        schema = REGISTRY.contents(document)
        assert key in schema["properties"], (key, url)
        definition = schema["$defs"][pointer.rsplit("/", 1)[-1]]
        assert definition["allOf"][0]["$ref"].endswith(f"/$defs/{_KINDS[where]}"), (where, key)
        if key != "tags":  # the client's own facet (openlineage_client_version)
            assert facet["_producer"] == PRODUCER, (key, facet["_producer"])
        seen.add(key)
    return seen
