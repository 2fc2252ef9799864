"""Regression guard of the default out-of-domain scorer on a fixed slice of real queries.

Not the benchmark (``make bench`` runs the full split: AUROC 0.993, FPR@95%TPR 0.014). On this
slice (2,000 reference questions, 200 in-domain, 200 out-of-domain from all CLINC150 domains and
its out-of-scope rows) the scorer measured AUROC 0.980 and FPR@95%TPR 0.035 when written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from service.drift.ood import ReferenceIndex, calibrate
from service.drift.reference import read_reference

SLICE = Path(__file__).parents[2] / "fixtures" / "ood"


def test_default_scorer_separates_the_slice() -> None:
    reference = read_reference(SLICE / "reference.tsv").texts
    in_domain = read_reference(SLICE / "in_domain.tsv").texts
    ood = read_reference(SLICE / "out_of_domain.tsv").texts
    assert (len(reference), len(in_domain), len(ood)) == (2000, 200, 200)
    index = ReferenceIndex.build(reference)
    s_in, s_ood = index.score(in_domain), index.score(ood)
    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_ood))]
    assert roc_auc_score(labels, np.r_[s_in, s_ood]) >= 0.97
    # FPR at 95% TPR: the share of out-of-domain queries below the in-domain 95th percentile
    assert np.mean(s_ood <= np.percentile(s_in, 95)) <= 0.08


def test_calibrated_threshold_holds_on_unseen_in_domain_queries() -> None:
    cal = calibrate(read_reference(SLICE / "reference.tsv").texts, percentile=95)
    in_domain = read_reference(SLICE / "in_domain.tsv").texts
    ood = read_reference(SLICE / "out_of_domain.tsv").texts
    _, in_flags = cal.score(in_domain)
    _, ood_flags = cal.score(ood)
    assert in_flags.mean() <= 0.10  # ~5% expected
    assert ood_flags.mean() >= 0.85
