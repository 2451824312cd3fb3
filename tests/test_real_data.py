"""Integration test on the real FER2013 files in Kaggle's layout (train, test, public labels).

Skipped, with the reason, when the data folder is absent (see ``real_data_dir`` in conftest).
The data is prepared once per module, which takes 10-25 s on 2 CPU cores.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_kaggle.audit import AuditReport, duplicate_group_index
from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.data.faceset import UNKNOWN_LABEL, FaceSet
from fer_kaggle.folds import make_folds

pytestmark = pytest.mark.real_data

N_TRAIN = 28_709
N_TEST = 7_178
N_PUBLIC_LABELS = 3_589


@pytest.fixture(scope="module")
def prepared(real_prepared) -> tuple[FaceSet, AuditReport, Path]:
    return real_prepared


@pytest.fixture(scope="module")
def real_folds(prepared) -> pd.DataFrame:
    faces, _, _ = prepared
    return make_folds(faces, k=5, seed=0)


def test_split_sizes(prepared) -> None:
    faces, _, _ = prepared
    assert int(faces.mask("train").sum()) == N_TRAIN
    assert int(faces.mask("public", "private", "test").sum()) == N_TEST
    assert int(faces.mask("public").sum()) == N_PUBLIC_LABELS


def test_labels(prepared) -> None:
    faces, _, _ = prepared
    train_labels = faces.labels[faces.mask("train")]
    test_labels = faces.labels[~faces.mask("train")]
    assert train_labels.min() == 0
    assert train_labels.max() == NUM_CLASSES - 1
    assert int((test_labels != UNKNOWN_LABEL).sum()) == N_PUBLIC_LABELS


def test_ids(prepared) -> None:
    faces, _, _ = prepared
    assert faces.ids[faces.mask("train")].tolist() == list(range(N_TRAIN))
    assert sorted(faces.ids[~faces.mask("train")].tolist()) == list(range(N_TEST))


def test_solution_file(prepared) -> None:
    faces, _, out = prepared
    solution = pd.read_csv(out / "solution.csv")
    assert list(solution.columns) == ["id", "emotion", "Usage"]
    assert len(solution) == N_PUBLIC_LABELS
    assert set(solution["Usage"]) == {"Public"}
    assert solution["id"].is_unique


def test_duplicates_found(prepared) -> None:
    _, report, out = prepared
    summary = json.loads((out / "audit.json").read_text())["duplicate_summary"]
    # About 1,850 FER2013 rows share their pixels with another row (exact duplicates).
    assert 1_700 <= summary["extra rows"] <= 2_000
    assert summary["train groups"] > 0
    assert summary["train+test groups"] > 0
    assert summary == report.duplicate_summary()


def test_near_blank_found(prepared) -> None:
    _, report, _ = prepared
    assert 1 <= len(report.near_blank) <= 100


def test_folds_class_shares(real_folds: pd.DataFrame) -> None:
    whole = np.bincount(real_folds["emotion"], minlength=NUM_CLASSES) / len(real_folds)
    for fold, part in real_folds.groupby("fold"):
        share = np.bincount(part["emotion"], minlength=NUM_CLASSES) / len(part)
        assert np.abs(share - whole).max() * 100 <= 1.0, f"fold {fold}"


def test_folds_cover_train_once(real_folds: pd.DataFrame) -> None:
    assert len(real_folds) == N_TRAIN
    assert real_folds["id"].tolist() == list(range(N_TRAIN))
    assert sorted(set(real_folds["fold"].tolist())) == [0, 1, 2, 3, 4]


def test_folds_keep_duplicates_together(prepared, real_folds: pd.DataFrame) -> None:
    faces, _, _ = prepared
    groups = duplicate_group_index(faces.images[faces.mask("train")])
    assert pd.Series(real_folds["fold"].to_numpy()).groupby(groups).nunique().max() == 1
