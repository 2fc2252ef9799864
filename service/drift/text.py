"""Text normalisation shared by the out-of-domain scorer and the dataset linter.

Everything is lower-cased on purpose: the InsuranceQA reference is Title Case and the CLINC150
traffic lower case, so a detector that saw case would learn capitalisation instead of topic.
Pure functions, no I/O, nothing blocks.
"""

from __future__ import annotations

import math
import re
import unicodedata

__all__ = ["approx_tokens", "normalise", "words"]

# a word is letters/digits with an optional English clitic ("what's", "can't"), the shape of the
# background word list's keys (wordfreq keeps clitics attached)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_PUNCT = re.compile(r"[^\w\s']+|_")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).casefold()


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (NFKC, curly apostrophes made straight, punctuation dropped)."""
    return _WORD.findall(_fold(text))


def normalise(text: str) -> str:
    """Case-folded text without punctuation and with single spaces: the key of "same question"."""
    return " ".join(_PUNCT.sub(" ", _fold(text)).split())


def approx_tokens(text: str) -> int:
    """Approximate token count (OpenAI's rule of thumb: ~4 characters of English per token)."""
    return math.ceil(len(text) / 4) if text else 0
