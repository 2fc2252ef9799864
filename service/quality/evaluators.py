"""azure-ai-evaluation evaluators, run off the event loop with bounded concurrency and hard timeouts.

:class:`EvaluatorSuite` owns one experiment's evaluators and a dedicated thread running its own
asyncio loop. ``evaluate(inputs)`` (blocking, for the scorer's thread) schedules every
(input, evaluator) pair on that loop, at most ``concurrency`` at a time, each bounded by
``asyncio.wait_for(timeout_s)``, which really cancels the call (a sync call in a thread pool could
only be abandoned). The library's traps (``../shared/notes/azure-ai-evaluation.md``) are handled
here, in one place:

* ``import azure.ai.evaluation`` costs ~2.5 s: done in :meth:`EvaluatorSuite.start`, never at import.
* Hidden retries (11 attempts, up to ~2 h): each evaluator's prompty flow gets
  ``max_retries=library_retries`` (default 0) and ``_LLM_CALL_TIMEOUT = timeout_s``; the scorer
  retries the sample later with backoff instead of holding a slot.
* Retry/failure tracebacks printed to stdout: ``PF_LOGGING_LEVEL=ERROR`` is set before the first
  evaluator is built (:func:`_quiet_library`, the only place we write the environment) and each
  flow's logger is replaced by ``service.quality.library``, silenced; we log our own one-line event.
* Config dicts are mutated in place: every evaluator gets a fresh one.
* ``GroundednessEvaluator`` switches prompts statefully: separate instances with and without query.
* Replies: scores are clipped to 1-5; NaN, a missing score and any exception are judge failures.
* Role lines (``system:``) and markdown images in judged text would be split into extra messages
  or image parts by the library: :func:`sanitize` neutralises them.
* ``*_properties`` (whose ``sample_input`` repeats the whole query and response) is never kept.

Private parts of the library used (pinned version, checked by tests): ``_to_async()``, ``_flow``,
``_LLM_CALL_TIMEOUT``, ``AsyncPrompty._send_with_retries(max_retries=)``, ``AsyncPrompty._logger``,
``GroundednessEvaluator._ensure_query_prompty_loaded()``.

Must not be imported by the gateway (hot path).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import re
import threading
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import SecretStr

from service.quality.judge import EvaluatorName, QualityConfig, judge_model_name, model_config
from service.telemetry.metrics import JUDGE_CALLS

__all__ = ["EvalOutcome", "EvaluatorSuite", "Judge", "JudgeInput", "Outcome", "sanitize"]

log = logging.getLogger(__name__)
#: where the library's own retry/failure messages go (silenced: we log one line per failure)
_LIBRARY_LOG = logging.getLogger("service.quality.library")

_ROLE_LINE = re.compile(r"(?im)^(\s*#?\s*)(system|user|assistant|function)(\s*:\s*)$")
_IMAGE = re.compile(r"!\[")
_MAX_REASON = 1000


class Outcome(StrEnum):
    """One evaluator call's outcome; the ``outcome`` label of ``tunewatch_judge_calls_total``."""

    OK = "ok"
    ERROR = "error"  # transport, HTTP status, or any exception from the library
    TIMEOUT = "timeout"
    INVALID = "invalid"  # the reply did not parse or carried no usable score
    SKIPPED = "skipped"  # the judge declined (status "skipped"): not applicable, not a failure


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """What is judged: the user's query, the response, and optional grounding context."""

    query: str
    response: str
    context: str | None = None


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    """One evaluator's verdict on one input. ``score`` is 1-5 when ``outcome`` is ok, else None."""

    evaluator: EvaluatorName
    outcome: Outcome
    score: float | None
    passed: bool | None
    reason: str
    judge_model: str


class Judge(Protocol):
    """What the scorer and the offline evaluation need of a judge (blocking calls)."""

    def evaluators_for(self, item: JudgeInput) -> list[EvaluatorName]:
        """The evaluators that apply to ``item`` (groundedness only with a context)."""

    def evaluate(
        self, items: Sequence[JudgeInput], only: Sequence[Collection[EvaluatorName]] | None = None
    ) -> list[list[EvalOutcome]]:
        """Every applicable evaluator (restricted to ``only[i]`` if given) on every item; one list per
        item, in order. Blocking. A failed call is an outcome, never a raise."""


def sanitize(text: str) -> str:
    """``text`` with role lines and markdown images neutralised (the prompty parser would split them)."""
    return _IMAGE.sub("! [", _ROLE_LINE.sub(r"\1(\2)\3", text))


def _quiet_library() -> None:
    # The library reads PF_LOGGING_LEVEL when it builds each flow's logger: set it before any is built.
    # Writing (not reading) the environment, once, here: config.py stays the only reader.
    os.environ["PF_LOGGING_LEVEL"] = "ERROR"
    _LIBRARY_LOG.setLevel(logging.CRITICAL)
    _LIBRARY_LOG.propagate = False


def _tame(flow: Any, retries: int) -> None:
    """Cap the library's retries on one prompty flow and send its logging to our silenced logger."""
    flow._send_with_retries = functools.partial(flow._send_with_retries, max_retries=retries)
    flow._logger = _LIBRARY_LOG


def _build(quality: QualityConfig, api_key: SecretStr | None) -> dict[str, Any]:
    """The evaluator instances by key (groundedness as ``groundedness`` and ``groundedness_q``).

    Blocking: imports azure.ai.evaluation (~2.5 s) on first use.
    """
    _quiet_library()
    from azure.ai.evaluation import (  # lazy: the import costs ~2.5 s
        CoherenceEvaluator,
        FluencyEvaluator,
        GroundednessEvaluator,
        RelevanceEvaluator,
    )

    from service.quality.tone import ToneEvaluator  # imports the library too

    def cfg() -> dict[str, Any]:
        return model_config(quality.judge, api_key)  # a fresh dict each time: the library mutates it

    built: dict[str, Any] = {}
    for name in quality.evaluators:
        threshold = quality.threshold(name)
        if name is EvaluatorName.RELEVANCE:
            built[name] = RelevanceEvaluator(cfg(), threshold=threshold)  # type: ignore[no-untyped-call]  # untyped library
        elif name is EvaluatorName.COHERENCE:
            built[name] = CoherenceEvaluator(cfg(), threshold=threshold)  # type: ignore[no-untyped-call]  # untyped library
        elif name is EvaluatorName.FLUENCY:
            built[name] = FluencyEvaluator(cfg(), threshold=threshold)  # type: ignore[no-untyped-call]  # untyped library
        elif name is EvaluatorName.TONE:
            built[name] = ToneEvaluator(cfg(), rubric=quality.tone_rubric, threshold=threshold)
        elif name is EvaluatorName.GROUNDEDNESS:
            built[name] = GroundednessEvaluator(cfg(), threshold=threshold)  # type: ignore[no-untyped-call]  # untyped library
            with_query = GroundednessEvaluator(cfg(), threshold=threshold)  # type: ignore[no-untyped-call]  # untyped library
            with_query._ensure_query_prompty_loaded()  # type: ignore[no-untyped-call]  # its with-query prompt, for good
            built["groundedness_q"] = with_query
    for ev in built.values():
        ev._LLM_CALL_TIMEOUT = quality.timeout_s
        _tame(ev._flow, quality.library_retries)
    return built


def _parse(name: EvaluatorName, result: dict[str, Any], quality: QualityConfig) -> EvalOutcome:
    """An ``EvalOutcome`` from the library's result dict (never keeps ``*_properties``)."""
    fallback_model = judge_model_name(quality.judge)
    props = result.get(f"{name}_properties")
    model = props.get("model") if isinstance(props, dict) else None
    judge_model = model if isinstance(model, str) and model else fallback_model
    reason = str(result.get(f"{name}_reason") or "")[:_MAX_REASON]
    if result.get(f"{name}_status") == "skipped":
        return EvalOutcome(name, Outcome.SKIPPED, None, None, reason, judge_model)
    raw: Any = result.get(f"{name}_score", result.get(name))
    try:
        score = float(raw)
    except (TypeError, ValueError):
        score = math.nan
    if math.isnan(score) or math.isinf(score):
        return EvalOutcome(
            name,
            Outcome.INVALID,
            None,
            None,
            f"judge reply without a usable score: {reason}"[:_MAX_REASON],
            judge_model,
        )
    score = min(5.0, max(1.0, score))  # the library never checks the range (0 or 7 come back as is)
    return EvalOutcome(name, Outcome.OK, score, score >= quality.threshold(name), reason, judge_model)


def _failure_reason(exc: BaseException) -> tuple[Outcome, str]:
    """Outcome and a short, secret-free reason for a failed call (no bodies, no headers)."""
    if isinstance(exc, TimeoutError):
        return Outcome.TIMEOUT, "judge call timed out"
    if isinstance(exc, json.JSONDecodeError):
        return Outcome.INVALID, "judge reply is not JSON"
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and chain[-1].__cause__ not in chain and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    codes = (
        getattr(e, "status_code", None) or getattr(getattr(e, "response", None), "status_code", None)
        for e in chain
    )
    status = next((c for c in codes if isinstance(c, int)), None)
    api = next((e for e in chain if type(e).__module__.startswith("openai")), chain[-1])
    detail = f"HTTP {status}" if status else type(api).__name__
    if any(type(e).__name__ in {"APITimeoutError", "ReadTimeout", "TimeoutException"} for e in chain):
        return Outcome.TIMEOUT, f"judge call timed out ({detail})"
    return Outcome.ERROR, f"judge call failed: {type(exc).__name__} ({detail})"


class EvaluatorSuite:
    """One experiment's evaluators, on a private event loop thread. ``start()``, ``evaluate()``, ``close()``.

    Thread-safe: ``evaluate`` may be called from any thread but the suite's own.
    """

    def __init__(
        self, quality: QualityConfig, *, api_key: SecretStr | None = None, name: str = "judge"
    ) -> None:
        self.quality = quality
        self._api_key = api_key
        self._name = name
        self._evaluators: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._slots: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Build the evaluators (imports the library: seconds) and start the loop thread. Idempotent."""
        with self._lock:
            if self._loop is not None:
                return
            self._evaluators = _build(self.quality, self._api_key)
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                self._slots = asyncio.Semaphore(self.quality.concurrency)
                ready.set()
                loop.run_forever()

            self._thread = threading.Thread(target=run, name=f"tunewatch-{self._name}", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop

    def close(self, timeout_s: float = 5.0) -> None:
        """Cancel what runs, stop the loop and join its thread (blocking up to ``timeout_s``)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            asyncio.get_running_loop().stop()

        asyncio.run_coroutine_threadsafe(drain(), loop)
        thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()

    def evaluators_for(self, item: JudgeInput) -> list[EvaluatorName]:
        names = list(self.quality.evaluators)
        if EvaluatorName.GROUNDEDNESS in names and not (item.context and item.context.strip()):
            names.remove(EvaluatorName.GROUNDEDNESS)  # nothing to be grounded in
        return names

    def evaluate(
        self, items: Sequence[JudgeInput], only: Sequence[Collection[EvaluatorName]] | None = None
    ) -> list[list[EvalOutcome]]:
        """Run every applicable evaluator on every item (blocking; starts the suite if needed).

        ``only[i]``, when given, restricts item ``i`` to those evaluators (a retry re-runs the missing ones).
        Each call is bounded by ``timeout_s``; the whole batch by the number of waves it needs.
        Failures come back as outcomes, never raised.
        """
        self.start()
        loop = self._loop
        assert loop is not None  # start() set it
        plan = [
            (i, name)
            for i, item in enumerate(items)
            for name in self.evaluators_for(item)
            if only is None or name in only[i]
        ]
        waves = math.ceil(len(plan) / self.quality.concurrency) + 1
        future = asyncio.run_coroutine_threadsafe(self._run_all(items, plan), loop)
        outcomes = future.result(timeout=waves * self.quality.timeout_s + 5.0)
        out: list[list[EvalOutcome]] = [[] for _ in items]
        for (i, _), outcome in zip(plan, outcomes, strict=True):
            out[i].append(outcome)
        return out

    async def _run_all(
        self, items: Sequence[JudgeInput], plan: list[tuple[int, EvaluatorName]]
    ) -> list[EvalOutcome]:
        return list(await asyncio.gather(*(self._one(name, items[i]) for i, name in plan)))

    def _call(self, name: EvaluatorName, item: JudgeInput) -> Callable[[], Awaitable[dict[str, Any]]]:
        query, response = sanitize(item.query), sanitize(item.response)
        if name is EvaluatorName.GROUNDEDNESS:
            context = sanitize(item.context or "")
            if query.strip():
                ev = self._evaluators["groundedness_q"]._to_async()
                return lambda: ev(query=query, response=response, context=context)
            ev = self._evaluators[name]._to_async()
            return lambda: ev(response=response, context=context)
        ev = self._evaluators[name]._to_async()
        if name is EvaluatorName.FLUENCY:
            return lambda: ev(response=response)
        return lambda: ev(query=query, response=response)

    async def _one(self, name: EvaluatorName, item: JudgeInput) -> EvalOutcome:
        assert self._slots is not None
        fallback_model = judge_model_name(self.quality.judge)
        async with self._slots:
            try:
                result = await asyncio.wait_for(self._call(name, item)(), self.quality.timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # task boundary: any library failure is a judge failure, counted
                outcome, reason = _failure_reason(exc)
                JUDGE_CALLS.labels(evaluator=name.value, outcome=outcome.value).inc()
                log.warning(
                    "judge.call_failed",
                    extra={"evaluator": name.value, "outcome": outcome.value, "reason": reason},
                )
                return EvalOutcome(name, outcome, None, None, reason, fallback_model)
        parsed = _parse(name, result if isinstance(result, dict) else {}, self.quality)
        label = Outcome.OK if parsed.outcome is Outcome.SKIPPED else parsed.outcome
        JUDGE_CALLS.labels(evaluator=name.value, outcome=label.value).inc()
        return parsed
