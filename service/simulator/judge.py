"""The simulated judge: answers the prompts azure-ai-evaluation's evaluators send.

:func:`answer` takes the JSON body of a chat-completions request and returns the message content
the judge replies with: ``{"reason": "...", "score": N, "status": "completed"}`` (N an integer
1-5), the shape the library's parsers expect (``_evaluators/_common/_prompty_strategy.py``).

Which evaluator sent the prompt is read from the template text (never from the judged text):
the first message of Relevance starts "You are a Relevance-Judge"; Coherence, Fluency and
Groundedness open their user message with ``# Definition`` then ``**Coherence**`` (etc.); our
tone evaluator (``service/quality/prompts/tone.prompty``) says "You are a Tone-Compliance-Judge".
The data fields are cut out between template anchors: an anchor that precedes the sample text is
searched from the start, one that follows it from the end, so the few-shot examples and whatever
the judged text contains cannot move the cut.

Scores are derived from the sample, deterministically: relevance from content-word overlap
between query and response, coherence and fluency from sentence structure, groundedness from the
share of the response's content words found in the context, tone from the rubric items listed in
the prompt. Test markers in the judged text: ``#judge:garbage`` (a non-JSON reply),
``#judge:noscore`` (JSON without a score), ``#judge:score=N`` (that score, even out of range).

Imports nothing of ours: the simulator may import only ``service.config`` and ``service.errors``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["answer", "classify", "score_prompt"]

_WORD = re.compile(r"[a-z][a-z'-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_STOPWORDS_TEXT = (
    "a an and are as at be been but by can could did do does for from had has have how i if in into "
    "is it its me my no not of on or our so than that the their them then there these they this to "
    "too us was we were what when where which who why will with would you your yours am any about "
    "also just more most much very should may might must get got here out up down all some such only "
    "own same other over under again further once both each few nor off s t don now"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
#: insurance vocabulary a domain fine-tune is expected to use precisely
_INSURANCE_TERMS_TEXT = (
    "premium deductible policy policyholder claim claims coverage covered insurer insured "
    "underwriting underwriter adjuster subrogation indemnification indemnity endorsement rider "
    "beneficiary exclusion liability peril copay coinsurance annuity actuarial rider lapse "
    "reinstatement grace surrender medigap medicare term whole-life umbrella comprehensive collision"
)
INSURANCE_TERMS = frozenset(_INSURANCE_TERMS_TEXT.split())
_EMPATHY = re.compile(
    r"\b(i understand|i'm sorry|i am sorry|sorry to hear|i can imagine|i know (?:this|how|that)|"
    r"understandably|that must be|thank you for (?:reaching out|asking|your question)|i appreciate)\b",
    re.IGNORECASE,
)
_EXPLAIN = re.compile(
    r"\b(because|this means|which means|means that|refers to|is when|works by|is designed to|in other words|"
    r"is a type of|is the|depends on|so that|as a result)\b",
    re.IGNORECASE,
)
_NEXT_STEPS = re.compile(r"\bnext steps?\b\s*[:\-]?", re.IGNORECASE)
_CONNECTIVES_TEXT = (
    "because therefore however so then first second next finally also additionally moreover thus "
    "meanwhile instead since although while"
)
_CONNECTIVES = frozenset(_CONNECTIVES_TEXT.split())
_MARKER = re.compile(r"#judge:(garbage|noscore|score=(-?\d+))")


def _stem(word: str) -> str:
    """A crude suffix stripper: enough for "claims"/"claim", "covered"/"cover", "driving"/"drive"."""
    for suffix in ("ational", "ation", "ness", "ment", "ing", "ies", "ied", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed lower-case words of ``text`` without stop words or words shorter than 3 letters."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) >= 3}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(_WORD.findall(s.lower())) > 0]


def _band(value: float, cuts: Sequence[float]) -> int:
    """1 + how many of the ascending ``cuts`` ``value`` reaches (so 1..len(cuts)+1)."""
    return 1 + sum(1 for c in cuts if value >= c)


def _clip(score: int) -> int:
    return max(1, min(5, score))


def _insurance_terms(text: str) -> set[str]:
    words = set(_WORD.findall(text.lower()))
    found = words & INSURANCE_TERMS
    return found | ({"pro rata"} if "pro rata" in text.lower() else set())


# --- the scores --------------------------------------------------------------------------------


def relevance(query: str, response: str) -> tuple[int, str]:
    """Coverage of the query's content words by the response, less forced domain framing."""
    q, r = content_words(query), content_words(response)
    if not q:
        return 3, "The query has no content words to match; the response is taken as plausible."
    coverage = len(q & r) / len(q)
    score = _band(coverage, (0.15, 0.3, 0.5, 0.7))
    forced = _forced_framing(query, response)
    if forced:
        score -= 1
    why = f"The response covers {coverage:.0%} of the query's key terms"
    why += "; it reframes a non-insurance question in insurance terms." if forced else "."
    return _clip(score), why


def _forced_framing(query: str, response: str) -> bool:
    """The response talks insurance to a question that is not about insurance."""
    return (
        len(_insurance_terms(response)) >= 2 and not _insurance_terms(query) and "insur" not in query.lower()
    )


def coherence(query: str, response: str) -> tuple[int, str]:
    """Sentence structure, connectives, repetition, and whether the sentences stay on the query's topic."""
    sentences = _sentences(response)
    words = _WORD.findall(response.lower())
    if not sentences or not words:
        return 1, "The response has no sentences to assess."
    mean_len = len(words) / len(sentences)
    repeated = 1 - len({s.lower() for s in sentences}) / len(sentences)
    connectives = sum(1 for w in words if w in _CONNECTIVES)
    topic = content_words(query)
    focus = sum(1 for s in sentences if content_words(s) & topic) / len(sentences) if topic else 1.0
    score = 2
    score += 1 if len(sentences) >= 2 else 0
    score += 1 if 6 <= mean_len <= 28 else 0
    score += 1 if connectives >= 1 or re.search(r"(?m)^\s*\d+[.)]\s", response) else 0
    score -= 1 if repeated > 0.2 else 0
    score -= 1 if focus < 0.3 else 0
    score -= 1 if _forced_framing(query, response) else 0
    return _clip(score), (
        f"Let's think step by step: {len(sentences)} sentences of {mean_len:.0f} words on average, "
        f"{connectives} connectives, {focus:.0%} of them on the query's topic, {repeated:.0%} repeated."
    )


def fluency(response: str) -> tuple[int, str]:
    """Readable sentence lengths, vocabulary range, capitalisation, no stutters."""
    sentences = _sentences(response)
    words = _WORD.findall(response.lower())
    if not sentences or not words:
        return 1, "The response has no words to assess."
    mean_len = len(words) / len(sentences)
    diversity = len(set(words)) / len(words)
    stutters = sum(1 for a, b in itertools.pairwise(words) if a == b)
    capitalised = sum(1 for s in sentences if s[:1].isupper() or not s[:1].isalpha()) / len(sentences)
    score = 1
    score += 1 if len(words) >= 8 else 0
    score += 1 if 8 <= mean_len <= 30 else 0
    score += 1 if diversity >= 0.5 or len(words) > 150 else 0
    score += 1 if capitalised >= 0.8 and stutters == 0 else 0
    return _clip(score), (
        f"Let's think step by step: {len(words)} words, {mean_len:.0f} per sentence, "
        f"vocabulary diversity {diversity:.2f}, {stutters} repeated words."
    )


def groundedness(context: str, response: str) -> tuple[int, str]:
    """Share of the response's content words that the context supports."""
    c, r = content_words(context), content_words(response)
    if not r:
        return 1, "The response makes no claims to check against the context."
    support = len(r & c) / len(r)
    return _band(support, (0.15, 0.3, 0.45, 0.6)), (
        f"Let's think step by step: {support:.0%} of the response's key terms appear in the context."
    )


def _rubric_item(item: str, response: str) -> float:
    """How far (0, 0.5 or 1) ``response`` satisfies one rubric item, by what the item asks for."""
    key = item.lower()
    if "empath" in key:
        return 1.0 if _EMPATHY.search(response) else 0.0
    if "next step" in key:
        return 1.0 if _NEXT_STEPS.search(response) else 0.0
    if "terminolog" in key or "jargon" in key:
        n = len(_insurance_terms(response))
        return 1.0 if n >= 3 else 0.5 if n >= 1 else 0.0
    if "explan" in key:
        return 1.0 if _EXPLAIN.search(response) and len(_sentences(response)) >= 2 else 0.0
    wanted = content_words(item)
    return 1.0 if wanted and len(wanted & content_words(response)) / len(wanted) >= 0.5 else 0.0


def tone(rubric: Iterable[str], response: str) -> tuple[int, str]:
    """1 + 4 x the share of rubric items the response satisfies, rounded."""
    items = [i for i in rubric if i.strip()]
    if not items:
        return 3, "No rubric was given."
    marks = {i: _rubric_item(i, response) for i in items}
    share = sum(marks.values()) / len(marks)
    missing = [i for i, m in marks.items() if m < 1.0]
    why = f"Meets {share:.0%} of the house format"
    why += f"; missing or partial: {', '.join(missing)}." if missing else "."
    return _clip(1 + round(4 * share)), why


# --- reading the prompt --------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: keep the text ones
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _between(text: str, start: str, end: str) -> str | None:
    """The text after the FIRST ``start`` and before the LAST ``end`` (None if either is absent)."""
    i = text.find(start)
    j = text.rfind(end)
    if i < 0 or j < 0 or j < i + len(start):
        return None
    return text[i + len(start) : j]


def _fields(block: str, labels: Sequence[str]) -> dict[str, str] | None:
    """Split ``LABEL1: a\\nLABEL2: b ...`` at the first occurrence of each later label."""
    if not block.startswith(f"{labels[0]}: "):
        return None
    out: dict[str, str] = {}
    rest = block[len(labels[0]) + 2 :]
    for label, following in zip(labels, [*labels[1:], None], strict=True):
        if following is None:
            out[label] = rest.strip()
            break
        k = rest.find(f"\n{following}: ")
        if k < 0:
            return None
        out[label], rest = rest[:k].strip(), rest[k + len(following) + 3 :]
    return out


def classify(messages: Sequence[Any]) -> str | None:
    """Which evaluator wrote ``messages``: relevance, coherence, fluency, groundedness, tone or None."""
    texts = [_text(m.get("content")) for m in messages if isinstance(m, dict)]
    first = texts[0] if texts else ""
    user = texts[1] if len(texts) > 1 else ""
    if first.lstrip().startswith("You are a Relevance-Judge"):
        return "relevance"
    if first.lstrip().startswith("You are a Tone-Compliance-Judge"):
        return "tone"
    head = user.lstrip()[:64]
    for name in ("coherence", "fluency", "groundedness"):
        if head.startswith(f"# Definition\n**{name.capitalize()}**"):
            return name
    return None


def score_prompt(messages: Sequence[Any]) -> tuple[str, int, str] | None:
    """(evaluator, score, reason) for a judge prompt, or None when it is not one we know."""
    kind = classify(messages)
    if kind is None:
        return None
    # Everything after the first message, rejoined: a role line in the judged text may have split it.
    body = "\n".join(_text(m.get("content")) for m in messages[1:] if isinstance(m, dict))
    if kind == "relevance":
        block = _between(body, "INPUT\n=====\n", "\n\nCONVERSATION_HISTORY is the full dialogue")
        f = _fields(block or "", ("CONVERSATION_HISTORY", "RESPONSE"))
        return None if f is None else ("relevance", *relevance(f["CONVERSATION_HISTORY"], f["RESPONSE"]))
    block = _between(body, "\n# Data\n", "\n\n\n# Tasks\n")
    if block is None:
        return None
    if kind == "groundedness":
        f = _fields(block, ("CONTEXT", "QUERY", "RESPONSE")) or _fields(block, ("CONTEXT", "RESPONSE"))
        return None if f is None else ("groundedness", *groundedness(f["CONTEXT"], f["RESPONSE"]))
    if kind == "fluency":
        f = _fields(block, ("RESPONSE",))
        return None if f is None else ("fluency", *fluency(f["RESPONSE"]))
    f = _fields(block, ("QUERY", "RESPONSE"))
    if f is None:
        return None
    if kind == "coherence":
        return ("coherence", *coherence(f["QUERY"], f["RESPONSE"]))
    rubric_block = _between(body, "\n# Rubric\n", "\n# Data\n") or ""
    rubric = [line[2:].strip() for line in rubric_block.splitlines() if line.startswith("- ")]
    return ("tone", *tone(rubric, f["RESPONSE"]))


def answer(body: dict[str, Any]) -> str:
    """The message content the judge replies to a chat-completions ``body`` with (pure, deterministic).

    An unknown prompt gets ``status: skipped`` (the library maps it to ``not_applicable``).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return json.dumps({"reason": "No messages to judge.", "score": None, "status": "skipped"})
    everything = "\n".join(_text(m.get("content")) for m in messages if isinstance(m, dict))
    marker = _MARKER.search(everything)
    if marker and marker.group(1) == "garbage":
        return "Well, I would say this one is rather good, perhaps a four out of five."
    scored = score_prompt(messages)
    if scored is None:
        return json.dumps({"reason": "Not a prompt this judge knows.", "score": None, "status": "skipped"})
    evaluator, score, reason = scored
    if marker and marker.group(1) == "noscore":
        return json.dumps({"reason": reason, "status": "completed"})
    if marker and marker.group(2) is not None:
        score = int(marker.group(2))
    return json.dumps({"reason": f"{reason} ({evaluator})", "score": score, "status": "completed"})
