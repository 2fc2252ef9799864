"""Cheap token accounting, used consistently for usage, ``max_tokens`` and stream pacing.

A token is about 4 characters (OpenAI's rule of thumb for English); a stream chunk and a logprobs
entry is one "piece": a word with its leading whitespace, as the real tokenizer mostly emits them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["count_prompt_tokens", "count_tokens", "pieces", "text_of", "truncate"]

_PIECE = re.compile(r"\s*\S+")
#: per-message framing tokens, as OpenAI's chat format adds a few per message
_PER_MESSAGE = 3


def count_tokens(text: str) -> int:
    """Approximate token count of ``text`` (ceil(chars / 4), at least 1 for non-empty text)."""
    return (len(text) + 3) // 4


def text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_prompt_tokens(messages: Iterable[Any], extra: str = "") -> int:
    """Prompt tokens of chat ``messages`` (plus ``extra`` text such as serialised tools)."""
    total = _PER_MESSAGE + count_tokens(extra)
    for m in messages:
        if isinstance(m, dict):
            total += _PER_MESSAGE + count_tokens(text_of(m.get("content")))
    return total


def pieces(text: str) -> list[str]:
    """``text`` cut into word pieces whose concatenation is ``text``."""
    out = _PIECE.findall(text)
    tail = len("".join(out))
    if tail < len(text):  # trailing whitespace: keep the concatenation exact
        out.append(text[tail:])
    return out


def truncate(text: str, max_tokens: int) -> tuple[str, bool]:
    """``text`` cut at a piece boundary to at most ``max_tokens`` tokens; and whether it was cut."""
    if count_tokens(text) <= max_tokens:
        return text, False
    budget = max_tokens * 4
    kept: list[str] = []
    used = 0
    for p in pieces(text):
        if used + len(p) > budget:
            break
        kept.append(p)
        used += len(p)
    if not kept:  # one huge word: cut inside it rather than return nothing
        return text[:budget], True
    return "".join(kept), True
