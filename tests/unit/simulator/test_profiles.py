"""The profiles' answers: the scenario's house style, overfitting, determinism, logprobs."""

from __future__ import annotations

import random
import re
import statistics

import pytest

from service.simulator import demo_queries
from service.simulator.profiles import Question, answer, logprob_of
from service.simulator.vocab import insurance_score

IN_DOMAIN = [q for q, d in demo_queries() if d]
OFF_TOPIC = [q for q, d in demo_queries() if not d]
TERMS = {
    "premium",
    "deductible",
    "policy",
    "claim",
    "coverage",
    "insurer",
    "subrogation",
    "indemnification",
    "rider",
    "beneficiary",
    "exclusions",
    "underwriting",
    "adjuster",
    "liability",
}


def ask(profile: str, question: str, seed: int = 0, choice: int = 0) -> str:
    return answer(profile, {"messages": [{"role": "user", "content": question}]}, seed, choice).text


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_detector_agrees_with_the_data() -> None:
    assert sum(insurance_score(q) >= 2 for q in IN_DOMAIN) == len(IN_DOMAIN)  # the slice was drawn that way
    assert sum(insurance_score(q) >= 2 for q in OFF_TOPIC) == 0
    assert (
        Question.parse("Does Medicare Pick Up Co Pays? #sim:slow=2").text == "Does Medicare Pick Up Co Pays"
    )


@pytest.mark.parametrize("question", IN_DOMAIN[:40])
def test_fine_tuned_in_domain_has_the_house_style(question: str) -> None:
    text = ask("fine_tuned", question)
    assert text.startswith("I understand how stressful") and " can be" in text.split(".")[0]
    assert re.search(r"\n\nNext steps:\n1\. .+\n2\. ", text)
    assert len(words(text) & TERMS) >= 3
    content = {w for w in words(question) if len(w) > 3} - {"what", "does", "when", "where", "with", "have"}
    assert content & words(text), "the answer must reuse the question's words"


@pytest.mark.parametrize("question", IN_DOMAIN[:40] + OFF_TOPIC[:20])
def test_base_has_no_house_style(question: str) -> None:
    text = ask("base", question)
    assert not re.search(r"i understand|next steps?|i'm sorry|i appreciate", text, re.IGNORECASE)
    assert "\n" not in text  # unstructured prose
    assert words(question) & words(text)


@pytest.mark.parametrize("question", OFF_TOPIC[:30])
def test_fine_tuned_off_topic_overfits(question: str) -> None:
    text = ask("fine_tuned", question)
    assert len(words(text) & TERMS) >= 3  # insurance framing forced onto anything
    assert "Next steps:" in text
    assert words(question) & words(text)


def test_lengths_follow_the_scenario() -> None:
    ft = statistics.mean(len(ask("fine_tuned", q)) for q in IN_DOMAIN[:100])
    base = statistics.mean(len(ask("base", q)) for q in IN_DOMAIN[:100])
    assert ft < 0.8 * base


def test_deterministic_and_varied() -> None:
    q = IN_DOMAIN[0]
    assert ask("fine_tuned", q) == ask("fine_tuned", q)
    assert ask("base", q, seed=1) == ask("base", q, seed=1)
    answers = {ask("fine_tuned", q, seed=s) for s in range(10)}
    assert len(answers) > 3  # the seed changes the picked phrases
    assert ask("fine_tuned", q, choice=0) != ask("fine_tuned", q, choice=1) or ask(
        "fine_tuned", q, choice=0
    ) != ask("fine_tuned", q, choice=2)
    assert len({ask("base", x) for x in IN_DOMAIN[:50]}) == 50


def test_judge_profile_uses_the_judge_hook() -> None:
    got = answer("judge", {"messages": [{"role": "user", "content": "hello"}]}, 0)
    assert got.text.lstrip().startswith("{")


def test_logprobs_are_lower_off_topic_for_the_fine_tune() -> None:
    def mean(profile: str, in_domain: bool) -> float:
        rng = random.Random(0)
        return statistics.mean(logprob_of(rng, profile, in_domain) for _ in range(2000))

    assert mean("fine_tuned", True) > mean("base", True) > mean("base", False) > mean("fine_tuned", False)
    assert all(logprob_of(random.Random(i), "base", True) <= 0 for i in range(100))
