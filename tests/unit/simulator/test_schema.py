"""JSON Schema filling for tool arguments and json_schema answers."""

from __future__ import annotations

import random

import jsonschema

from service.simulator.schema import fill

SCHEMA = {
    "type": "object",
    "properties": {
        "policy_number": {"type": "string"},
        "claim_id": {"type": "string"},
        "incident_date": {"type": "string"},
        "amount": {"type": "number", "minimum": 0, "maximum": 5000},
        "count": {"type": "integer", "minimum": 1, "maximum": 3},
        "urgent": {"type": "boolean"},
        "kind": {"type": "string", "enum": ["auto", "home"]},
        "notes": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "contact": {
            "type": "object",
            "properties": {"email": {"type": "string"}, "phone": {"type": "string"}},
        },
        "mode": {"anyOf": [{"const": "fast"}, {"type": "string"}]},
    },
    "required": ["policy_number", "amount"],
}


def test_filled_values_validate_and_are_deterministic() -> None:
    value = fill(SCHEMA, "my car was hit", random.Random(1))
    jsonschema.validate(value, SCHEMA)
    assert value == fill(SCHEMA, "my car was hit", random.Random(1))
    assert value["policy_number"].startswith("POL-") and value["claim_id"].startswith("CLM-")
    assert value["kind"] == "auto" and value["mode"] == "fast" and value["notes"] == "my car was hit"
    assert "@" in value["contact"]["email"]


def test_odd_schemas() -> None:
    rng = random.Random(0)
    assert fill({}, "t", rng) == "t"
    assert fill(None, "t", rng) == "t"
    assert fill({"type": "object"}, "t", rng) == {}
    deep: dict[str, object] = {"type": "object", "properties": {}}
    node = deep
    for _ in range(20):  # deeper than any real schema: bounded, not a recursion error
        child: dict[str, object] = {"type": "object", "properties": {}}
        node["properties"] = {"x": child}
        node = child
    assert isinstance(fill(deep, "t", rng), dict)
