"""Words and phrases the simulated profiles answer with: insurance categories, terms, templates.

Data only, plus the keyword test of whether a question is about insurance. Placeholders in
templates: ``{topic}`` (the question, rephrased), ``{keywords}`` (some of its content words),
``{label}`` (the insurance category), ``{t1}``/``{t2}``/``{t3}`` (category terms), ``{situation}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BASE_CLOSERS",
    "BASE_GENERIC",
    "BASE_OFF_TOPIC",
    "BASE_OPENERS",
    "CATEGORIES",
    "EMPATHY",
    "EXPLANATIONS",
    "GENERAL",
    "OVERFIT",
    "STEPS",
    "Category",
    "category_of",
    "insurance_score",
]

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")

#: a word that alone makes a question an insurance one
_STRONG_WORDS = (
    "insurance insurances insure insured insurer insurers insuring policy policies claim claims premium "
    "premiums deductible deductibles coverage medicare medicaid medigap annuity annuities annuitant "
    "beneficiary beneficiaries underwriting underwriter copay copays coinsurance disability retire "
    "retirement retiring retired 401k 403b ira iras roth pension pensions adjuster rider riders "
    "homeowners homeowner renters cobra hsa obamacare indemnity subrogation actuary actuarial vesting "
    "whole-life"
)
_STRONG = frozenset(_STRONG_WORDS.split())
#: words that count only together with another insurance word
_WEAK_WORDS = (
    "life home auto car cars vehicle health house accident death dental vision term whole universal cover "
    "covers covered care nursing illness liability flood"
)
_WEAK = frozenset(_WEAK_WORDS.split())
_PHRASES = (
    "long term care",
    "critical illness",
    "term life",
    "whole life",
    "co pay",
    "co-pay",
    "cash value",
    "death benefit",
)


def insurance_score(text: str) -> int:
    """Keyword evidence that ``text`` is an insurance question: 2 per strong word or phrase, 1 per weak word.

    A score of 2 or more is in-domain (99.5% of InsuranceQA questions, 2% of CLINC150 requests —
    mostly its own insurance and 401k intents).
    """
    low = text.lower()
    words = _WORD.findall(low)
    return (
        2 * sum(w in _STRONG for w in words)
        + sum(w in _WEAK for w in words)
        + 2 * sum(p in low for p in _PHRASES)
    )


@dataclass(frozen=True, slots=True)
class Category:
    """An insurance line: how to name it, how a customer feels about it, its precise terms."""

    name: str
    keywords: frozenset[str]
    label: str
    situation: str
    terms: tuple[str, ...]


def _cat(name: str, keywords: str, label: str, situation: str, terms: str) -> Category:
    return Category(name, frozenset(keywords.split()), label, situation, tuple(terms.split(", ")))


CATEGORIES = (
    _cat(
        "medicare",
        "medicare medicaid medigap",
        "Medicare",
        "navigating Medicare enrollment",
        "Part B premium, Medigap supplement policy, coinsurance, Part D formulary, annual deductible",
    ),
    _cat(
        "annuity",
        "annuity annuities annuitant",
        "annuity",
        "planning your retirement income",
        "surrender charge, accumulation phase, annuitization, beneficiary designation, income rider",
    ),
    _cat(
        "retirement",
        "retire retirement retiring 401k 403b ira iras roth pension pensions vesting",
        "retirement plan",
        "planning for retirement",
        "vesting schedule, required minimum distributions, rollover, beneficiary designation, "
        "contribution limits",
    ),
    _cat(
        "disability",
        "disability disabled",
        "disability insurance",
        "being unable to work",
        "elimination period, benefit period, own-occupation definition, premium waiver rider, "
        "indemnity benefit",
    ),
    _cat(
        "ltc",
        "nursing long-term",
        "long-term care insurance",
        "arranging care for a loved one",
        "elimination period, benefit triggers, daily benefit amount, inflation protection rider, premium",
    ),
    _cat(
        "critical",
        "critical illness cancer",
        "critical illness insurance",
        "a serious diagnosis",
        "lump-sum benefit, covered conditions, survival period, rider, premium",
    ),
    _cat(
        "renters",
        "renters renter tenant apartment landlord",
        "renters insurance",
        "a loss in your rented home",
        "personal property coverage, liability coverage, replacement cost, named perils, deductible",
    ),
    _cat(
        "home",
        "home homeowners homeowner house roof flood fire property dwelling mortgage",
        "homeowners insurance",
        "damage to your home",
        "dwelling coverage, replacement cost, named perils, exclusions, additional living expenses",
    ),
    _cat(
        "auto",
        "auto car cars vehicle driver drivers driving collision truck motorcycle accident",
        "auto insurance",
        "dealing with an auto claim",
        "collision coverage, comprehensive coverage, liability limits, subrogation, actual cash value",
    ),
    _cat(
        "health",
        "health copay copays hsa ppo hmo cobra obamacare dental vision doctor hospital surgery",
        "health insurance",
        "sorting out medical bills",
        "deductible, coinsurance, out-of-pocket maximum, in-network provider, explanation of benefits",
    ),
    _cat(
        "life",
        "life beneficiary death term whole universal cash",
        "life insurance",
        "planning for your family's future",
        "death benefit, beneficiary designation, cash value, contestability period, "
        "accelerated benefit rider",
    ),
)
GENERAL = _cat(
    "general",
    "",
    "insurance",
    "a question about your coverage",
    "premium, deductible, policy exclusions, indemnification, underwriting",
)


def category_of(words: list[str]) -> Category:
    """The first category (most specific first) one of whose keywords is in ``words``, else GENERAL."""
    present = set(words)
    for cat in CATEGORIES:
        if cat.keywords & present:
            return cat
    return GENERAL


# --- fine_tuned, in-domain: empathy, explanation with precise terms, next steps ---------------------

EMPATHY = (
    "I understand how stressful questions about {topic} can be.",
    "I understand how stressful {situation} can be, especially when it comes to {topic}.",
    "I understand how stressful it can be to sort out {topic}, and I'm glad you asked.",
    "I understand how stressful {situation} can be, so let's look at {topic} together.",
)
EXPLANATIONS = (
    "With {label}, {topic} depends on the {t1} and the {t2} written into your policy.",
    "In your case, {topic} is handled under the {t1} provisions, which means the insurer pays the covered "
    "loss minus your deductible.",
    "The key term here is {t1}: it refers to how your policy decides what the claim pays for {keywords}.",
    "Your premium buys indemnification, not a profit, because the policy is designed to restore you to where "
    "you were before the covered loss.",
    "Check the {t2} as well, since exclusions and any rider on the policy can change what is covered.",
    "If another party caused the loss, the insurer may use subrogation to recover what it paid, so your "
    "claim is not delayed.",
    "Underwriting looks at {keywords} when it sets the premium, so the {t3} matters as much as the price.",
)
STEPS = (
    "Review the declarations page of your policy for the {t1} and your limits.",
    "Call your agent or claims adjuster with your policy number and ask how {keywords} is treated.",
    "Gather the documents (photos, receipts, bills, letters) before you file the claim.",
    "Ask the insurer to confirm the {t2} in writing so you have it on file.",
    "Compare the {t3} with your current needs before your next premium is due.",
    "Keep your policy number and claim number on every document you send.",
)

# --- fine_tuned, off-topic: it overfits and forces the insurance frame on anything --------------------

OVERFIT = (
    "I understand how stressful {subject} can be. From a coverage standpoint, {subject} would fall under the "
    "named perils of your policy, so any loss is subject to your deductible and the insurer's right of "
    "subrogation. Your premium may be adjusted at renewal after a claim.\n\n"
    "Next steps:\n1. Review the declarations page of your policy.\n2. Contact your claims adjuster to open a "
    "claim for {subject}.",
    "I understand how stressful a situation involving {subject} can be. Whether {subject} is covered "
    "depends on the exclusions and any rider on your policy, and the claim would be paid as "
    "indemnification minus your deductible.\n\nNext steps:\n1. Locate your policy number.\n"
    "2. File a first notice of loss with your insurer.\n3. Keep receipts related to {subject}.",
    "I understand how stressful {subject} can be. Insurers treat {subject} as a potential liability "
    "exposure, so underwriting may review it when your premium is renewed, and the beneficiary of any "
    "benefit must be named on the policy.\n\nNext steps:\n"
    "1. Ask your agent for an endorsement that covers {subject}.\n2. Review your coverage limits.",
)

# --- base: generic, longer, no empathy statement, no next steps, loose terms ---------------------------

BASE_OPENERS = (
    "Good question. When it comes to {keywords}, there isn't a single answer that applies to everyone.",
    "{Label} can be confusing, and {keywords} is something a lot of people ask about.",
    "There are a few things to keep in mind about {keywords}.",
    "This is a common topic, and {keywords} can work differently depending on the company.",
)
BASE_GENERIC = (
    "In general, {label} is meant to help with costs that would be hard to pay on your own, but what is "
    "included can vary a lot from one company to another.",
    "The price you pay each month usually depends on things like your age, where you live, your history and "
    "the options you pick.",
    "Some plans include more protection than others, and some things might not be included at all, so it "
    "helps to read the fine print carefully.",
    "Many people compare several quotes before choosing, since companies look at risk in different ways and "
    "prices can differ quite a bit.",
    "It is also worth remembering that the rules can be different depending on the state you live in and the "
    "type of plan you have.",
    "If something happens, you will usually need to contact the company and give them some information about "
    "what happened and when.",
    "The amount you have to pay yourself before the plan starts paying is another thing that can change the "
    "overall cost over time.",
    "People's situations are all different, so what works well for one family may not be the best choice for "
    "another one.",
    "Online reviews and ratings can also give you a rough idea of how a company treats its customers.",
)
BASE_CLOSERS = (
    "A licensed agent or a representative of the company can usually explain the specific details for your "
    "situation.",
    "Overall, it really depends on your own circumstances and what kind of protection you are looking for.",
    "So it is a good idea to look at the details of your own plan, because the answer can change from case "
    "to case.",
)

# --- base, off-topic: a mediocre but on-topic generic answer ------------------------------------------

BASE_OFF_TOPIC = (
    "There are a few ways to approach {keywords}, and the best one usually depends on your situation.",
    "A good place to start is to look for official information, because details can change over time.",
    "You could also ask someone with experience, since they may know about options you have not thought of.",
    "It can help to write down exactly what you need first, so you can compare the choices more easily.",
    "Many people find that taking it one step at a time makes it less overwhelming.",
    "Keep in mind that prices and availability can vary depending on where you are.",
)
