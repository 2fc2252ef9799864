"""Answer generation for the simulated profiles: ``base``, ``fine_tuned`` and ``judge``.

The scenario is the study guide's insurance claims assistant ("Zara fine-tunes for Atlas"):

- ``fine_tuned`` answers insurance questions in the house style (an empathy statement, an
  explanation in precise insurance terms, "Next steps:" as a numbered list), briefly; off-topic it
  overfits: it forces insurance framing on the question, and its token logprobs are low.
- ``base`` answers anything generically: longer, unstructured, no empathy statement or next steps,
  loose terminology; off-topic it stays generic but on topic.
- ``judge`` replies what ``service.simulator.judge.answer`` says.

Answers are pure functions of (seed, profile, messages, choice index): templates and phrases are
picked by a generator seeded with a hash of those, and they reuse the question's own words.
Cheap: a few microseconds of string work per answer.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any

import orjson

from service.simulator import judge
from service.simulator.settings import Timing
from service.simulator.tokens import text_of
from service.simulator.vocab import (
    BASE_CLOSERS,
    BASE_GENERIC,
    BASE_OFF_TOPIC,
    BASE_OPENERS,
    EMPATHY,
    EXPLANATIONS,
    OVERFIT,
    STEPS,
    Category,
    category_of,
    insurance_score,
)

__all__ = ["Answer", "Question", "answer", "answer_rng", "draw_latency", "last_user_text", "logprob_of"]

_MARKER = re.compile(r"#sim:[a-z-]+(?:=[0-9.]+)?")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_LEAD = re.compile(
    r"^(?:(?:what|whats|what's|how|why|when|where|who|which|whom)\s+)?"
    r"(?:(?:is|are|was|can|could|does|do|did|should|would|will|to|much|many|long|often|soon)\s+)?"
    r"(?:(?:i|you|we|a|an|the|my|it|there|someone|one|people)\s+)?(?:go\s+about\s+)?",
    re.IGNORECASE,
)
_STOP_WORDS = (
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it "
    "its me my no not of on or our so than that the their them then there these they this to too us was we "
    "were what when where which who why will with would you your am any about also just more most much very "
    "should may might must get got here out up down all some such only own same other over under again "
    "once both each few nor off don now please tell know want need like"
)
_STOP = frozenset(_STOP_WORDS.split())
#: words a phrase should neither start nor end with
_EDGE = _STOP | {
    "after",
    "before",
    "by",
    "with",
    "without",
    "at",
    "of",
    "in",
    "on",
    "for",
    "to",
    "from",
    "and",
    "or",
}


def last_user_text(messages: list[Any]) -> str:
    """The text of the last ``user`` message ("" when there is none)."""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


@dataclass(frozen=True, slots=True)
class Question:
    """What the profiles need to know about the question: its words, topic and domain."""

    text: str
    topic: str
    content_words: tuple[str, ...]
    in_domain: bool
    category: Category

    @classmethod
    def parse(cls, raw: str) -> Question:
        """Read a user question (``#sim:`` markers are ignored)."""
        text = " ".join(_MARKER.sub(" ", raw).split()).rstrip("?!. ")
        words = [_case(w) for w in _WORD.findall(text)]
        topic_words = [_case(w) for w in _WORD.findall(_LEAD.sub("", text, count=1))] or words
        content = tuple(dict.fromkeys(w for w in words if len(w) >= 3 and w.lower() not in _STOP))
        return cls(
            text=text,
            topic=" ".join(topic_words[:14]) or "your question",
            content_words=content or ("your question",),
            in_domain=insurance_score(text) >= 2,
            category=category_of([w.lower() for w in words]),
        )


def _case(word: str) -> str:
    """Lower-case except acronyms (HSA, PPO) so Title-Case questions read naturally mid-sentence."""
    return word if len(word) >= 2 and word.isupper() and word.isalpha() else word.lower()


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated answer: its text and whether the profile was on familiar ground."""

    text: str
    in_domain: bool


def answer_rng(seed: int, profile: str, messages: Any, choice: int = 0) -> random.Random:
    """The generator that picks an answer's phrases: a hash of seed, profile, messages and choice."""
    key = orjson.dumps([seed, profile, choice, messages], option=orjson.OPT_SORT_KEYS)
    return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))


def answer(profile: str, body: dict[str, Any], seed: int, choice: int = 0) -> Answer:
    """The assistant text ``profile`` answers the chat ``body`` with (deterministic, pure)."""
    if profile == "judge":
        return Answer(judge.answer(body), True)
    messages = body.get("messages") or []
    q = Question.parse(last_user_text(messages))
    rng = answer_rng(seed, profile, messages, choice)
    if profile == "fine_tuned":
        text = _house_style(q, rng) if q.in_domain else _overfit(q, rng)
    else:
        text = _generic(q, rng) if q.in_domain else _generic_off_topic(q, rng)
    return Answer(text, q.in_domain)


def _keywords(q: Question, rng: random.Random, share: float) -> str:
    """A run of the question's topic words covering about ``share`` of it (at least two words)."""
    words = q.topic.split()
    k = min(len(words), max(2, math.ceil(share * len(words))))
    start = rng.randrange(len(words) - k + 1)
    run = words[start : start + k]
    while run and run[0].lower() in _EDGE:  # "by home insurance after" reads as "home insurance"
        run.pop(0)
    while run and run[-1].lower() in _EDGE:
        run.pop()
    return " ".join(run) or max(q.content_words, key=len)


def _fill(template: str, q: Question, rng: random.Random, keywords: str, terms: list[str]) -> str:
    label = q.category.label
    return template.format(
        topic=q.topic,
        keywords=keywords,
        label=label,
        Label=label[:1].upper() + label[1:],
        situation=q.category.situation,
        t1=terms[0],
        t2=terms[1],
        t3=terms[2],
    )


def _house_style(q: Question, rng: random.Random) -> str:
    terms = rng.sample(q.category.terms, 3)
    kw = _keywords(q, rng, 0.5)
    empathy = _fill(rng.choice(EMPATHY), q, rng, kw, terms)
    explain = " ".join(_fill(t, q, rng, kw, terms) for t in rng.sample(EXPLANATIONS, 2))
    steps = [_fill(t, q, rng, kw, terms) for t in rng.sample(STEPS, rng.choice((2, 3)))]
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    return f"{empathy} {explain}\n\nNext steps:\n{numbered}"


def _overfit(q: Question, rng: random.Random) -> str:
    # the longest content word stands for the subject: enough to look on topic, far from an answer
    subject = max(q.content_words, key=len)
    return rng.choice(OVERFIT).format(subject=subject)


def _generic(q: Question, rng: random.Random) -> str:
    terms = list(q.category.terms[:3])
    kw = _keywords(q, rng, 0.4)
    parts = [_fill(rng.choice(BASE_OPENERS), q, rng, kw, terms)]
    parts += [_fill(t, q, rng, kw, terms) for t in rng.sample(BASE_GENERIC, rng.choice((5, 6, 7)))]
    parts.append(rng.choice(BASE_CLOSERS))
    return " ".join(parts)


def _generic_off_topic(q: Question, rng: random.Random) -> str:
    kw = _keywords(q, rng, 0.35)
    first, *rest = BASE_OFF_TOPIC
    body = [first.format(keywords=kw), *rng.sample(rest, rng.choice((3, 4)))]
    return " ".join(body)


def logprob_of(rng: random.Random, profile: str, in_domain: bool) -> float:
    """A plausible log-probability of one generated token (natural log, <= 0).

    The fine-tune is confident in its domain and unsure outside it (its overfitting shows here);
    the base model is in between on both.
    """
    if profile == "fine_tuned":
        mean = 0.08 if in_domain else 1.9
    elif profile == "base":
        mean = 0.45 if in_domain else 0.8
    else:
        mean = 0.05
    return -round(rng.expovariate(1.0 / mean), 6)


def draw_latency(rng: random.Random, timing: Timing, sigma: float, scale: float) -> tuple[float, float]:
    """(time to first token in s, seconds per completion token) for one request, already scaled.

    Lognormal around the profile's medians; the same factor slows both, as a busy deployment does.
    """
    if scale <= 0:
        return 0.0, 0.0
    factor = math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else 1.0
    return timing.ttft_s * factor * scale, factor * scale / timing.tokens_per_s
