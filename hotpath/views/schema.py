"""JSON Schema, written compactly: each tool's answers are described next to the code that
builds them, and published as the tool's MCP ``outputSchema``. Objects are closed
(``additionalProperties: false``) so that a field added to an answer without its schema, or a
schema naming a field no answer has, fails the test that validates every tool's answers."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}


def maybe(schema: Schema) -> Schema:
    """The value, or null (a figure that does not exist yet)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(**properties: Schema) -> Schema:
    """An object with exactly these fields, all required."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def optional(schema: Schema, *names: str) -> Schema:
    """The object ``schema`` with these fields no longer required."""
    return {**schema, "required": [name for name in schema["required"] if name not in names]}


def per_process(row: Schema) -> Schema:
    """A row that says which process it is of (``common.with_children``), when several sent
    rows."""
    return {**row, "properties": {**row["properties"], "pid": INT}}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def mapping(values: Schema) -> Schema:
    """An object whose keys are data (exception types, percentile names), not fields."""
    return {"type": "object", "additionalProperties": values}


def one_of(*schemas: Schema) -> Schema:
    """One of these object shapes. MCP clients require an outputSchema's top level to say
    ``"type": "object"`` (the official inspector refuses the whole tool list otherwise)."""
    return {"type": "object", "anyOf": list(schemas)}


def not_recorded(key: str) -> Schema:
    """The answer of a section whose collector is off (``common.not_recorded``)."""
    return obj(**{key: {"type": "array", "maxItems": 0}}, recorded={"const": False}, note=STR)


ENTRY = obj(id=INT, name=STR, location=STR)
PERCENTILES = mapping(maybe(INT))
SPREAD = obj(count=INT, avg_ns=maybe(INT), max_ns=maybe(INT), percentiles_ns=PERCENTILES)


def listing(key: str, row: Schema, total_key: str, **extra: Schema) -> Schema:
    """A summary answer (``common.listing``)."""
    return obj(sorted_by=STR, **{total_key: INT}, shown=INT, **extra, **{key: array(row)})


def logs(kind: str, entry: Schema, row: Schema, **extra: Schema) -> Schema:
    """A log answer (``common.logs``)."""
    return obj(**{kind: entry}, order={"const": "newest_first"}, **extra, logs=array(row))
