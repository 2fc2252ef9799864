"""Plausible JSON values for a JSON Schema: tool-call arguments and ``json_schema`` answers."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["fill"]

_MAX_DEPTH = 6


def fill(schema: Any, text: str, rng: random.Random, name: str = "", depth: int = 0) -> Any:
    """A value valid for the common subset of JSON Schema (type, properties, items, enum, const).

    ``text`` feeds the string fields (the answer or the user's question), ``name`` is the property
    name, which picks realistic identifiers (``policy_number`` → ``POL-…``). Deterministic given ``rng``.
    """
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return text[:80]
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return fill(options[0], text, rng, name, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {k: fill(v, text, rng, k, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [fill(schema.get("items", {}), text, rng, name, depth + 1)]
    if kind == "integer":
        low = int(schema.get("minimum", 1))
        return rng.randint(low, max(low, int(schema.get("maximum", low + 999))))
    if kind == "number":
        return round(rng.uniform(float(schema.get("minimum", 0)), float(schema.get("maximum", 1000))), 2)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(name.lower(), text, rng)


def _string(name: str, text: str, rng: random.Random) -> str:
    digits = f"{rng.randrange(10**7):07d}"
    if "policy" in name:
        return f"POL-{digits}"
    if "claim" in name:
        return f"CLM-{digits}"
    if "date" in name:
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if "email" in name:
        return f"customer{digits[:3]}@example.com"
    if "phone" in name:
        return f"+1-555-{digits[:3]}-{digits[3:7]}"
    return text[:200]
