"""Duplicate-aware stratified K-fold splits: invariants, balance, determinism, bad input."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fer_kaggle.audit import duplicate_group_index
from fer_kaggle.constants import IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.data.faceset import UNKNOWN_LABEL, FaceSet
from fer_kaggle.errors import ConfigError, DataError
from fer_kaggle.folds import folds_metadata_path, make_folds, read_folds, write_folds

#: FER2013's Training class counts, in label order, used as class shares.
FER_TRAIN_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965])


def train_faces(labels: np.ndarray, duplicates: list[list[int]] = (), seed: int = 0, n_test: int = 0) -> FaceSet:
    """Build a face set of random training faces, with each listed group of rows made identical.

    ``n_test`` unlabelled test faces are appended, which folds must ignore.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    images = rng.integers(0, 256, size=(n + n_test, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for group in duplicates:
        images[group] = images[group[0]]
    all_labels = np.concatenate([np.asarray(labels, dtype=np.int64), np.full(n_test, UNKNOWN_LABEL)])
    ids = np.concatenate([np.arange(n), np.arange(n_test)])
    splits = np.array(["train"] * n + ["test"] * n_test)
    return FaceSet(images, all_labels, ids, splits)


def fer_shaped_labels(n: int, seed: int) -> np.ndarray:
    """Labels with FER2013's class shares (Disgust about 1.5%), shuffled."""
    counts = np.floor(FER_TRAIN_COUNTS / FER_TRAIN_COUNTS.sum() * n).astype(int)
    counts[3] += n - counts.sum()
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(NUM_CLASSES), counts))


def class_share_drift(frame: pd.DataFrame) -> float:
    """Return the largest gap, in percentage points, between a fold's class share and the whole's."""
    whole = np.bincount(frame["emotion"], minlength=NUM_CLASSES) / len(frame)
    gaps = []
    for _, part in frame.groupby("fold"):
        share = np.bincount(part["emotion"], minlength=NUM_CLASSES) / len(part)
        gaps.append(np.abs(share - whole).max())
    return float(max(gaps) * 100)


@pytest.fixture(scope="module")
def large_faces() -> FaceSet:
    """2,000 faces with FER2013's class shares and 150 duplicate groups of 2-3 faces."""
    labels = fer_shaped_labels(2000, seed=0)
    rng = np.random.default_rng(1)
    rows = rng.permutation(2000)
    duplicates = [rows[i : i + 2].tolist() for i in range(0, 200, 2)] + [rows[i : i + 3].tolist() for i in range(200, 350, 3)]
    for group in duplicates:
        labels[group] = labels[group[0]]
    return train_faces(labels, duplicates)


@pytest.fixture(scope="module")
def large_folds(large_faces: FaceSet) -> pd.DataFrame:
    return make_folds(large_faces, k=5, seed=0)


def test_columns_and_order(large_folds: pd.DataFrame) -> None:
    assert list(large_folds.columns) == ["id", "emotion", "fold", "group"]
    assert large_folds["id"].is_monotonic_increasing


def test_every_id_once(large_faces: FaceSet, large_folds: pd.DataFrame) -> None:
    assert sorted(large_folds["id"].tolist()) == large_faces.ids.tolist()


def test_labels_match_faces(large_faces: FaceSet, large_folds: pd.DataFrame) -> None:
    assert large_folds["emotion"].tolist() == large_faces.labels.tolist()


def test_duplicates_in_one_fold(large_faces: FaceSet, large_folds: pd.DataFrame) -> None:
    groups = duplicate_group_index(large_faces.images)
    folds_per_group = pd.Series(large_folds["fold"].to_numpy()).groupby(groups).nunique()
    assert (np.bincount(groups) > 1).sum() == 150
    assert folds_per_group.max() == 1


def test_group_column_is_duplicate_group(large_faces: FaceSet, large_folds: pd.DataFrame) -> None:
    assert large_folds["group"].tolist() == duplicate_group_index(large_faces.images).tolist()


def test_fold_sizes_balanced(large_folds: pd.DataFrame) -> None:
    sizes = large_folds["fold"].value_counts()
    assert sorted(sizes.index.tolist()) == [0, 1, 2, 3, 4]
    assert sizes.max() - sizes.min() <= 8  # 2% of a 400-face fold


def test_class_shares_within_1pp(large_folds: pd.DataFrame) -> None:
    assert class_share_drift(large_folds) <= 1.0


def test_same_seed_same_bytes(large_faces: FaceSet, tmp_path: Path) -> None:
    paths = [tmp_path / "a" / "folds.csv", tmp_path / "b" / "folds.csv"]
    for path in paths:
        write_folds(make_folds(large_faces, k=5, seed=7), path, data_fingerprint="abc", k=5, seed=7)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert folds_metadata_path(paths[0]).read_bytes() == folds_metadata_path(paths[1]).read_bytes()


def test_other_seed_differs(large_faces: FaceSet) -> None:
    first = make_folds(large_faces, k=5, seed=0)
    second = make_folds(large_faces, k=5, seed=1)
    assert not first["fold"].equals(second["fold"])


def test_test_faces_ignored() -> None:
    faces = train_faces(np.arange(40) % NUM_CLASSES, n_test=15)
    frame = make_folds(faces, k=3, seed=0)
    assert frame["id"].tolist() == list(range(40))


@pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")
def test_rare_class_warns() -> None:
    labels = np.array([0, 2, 3, 4, 5, 6] * 6 + [1, 1, 1])
    with pytest.warns(UserWarning, match="Disgust has 3 training faces, fewer than k=5"):
        make_folds(train_faces(labels), k=5, seed=0)


@pytest.mark.parametrize("k", [1, 0, -2, True, 2.5, "5"])
def test_k_invalid(k) -> None:
    with pytest.raises(ConfigError, match="k must be an integer >= 2"):
        make_folds(train_faces(np.arange(21) % NUM_CLASSES), k=k, seed=0)


def test_k_above_distinct_faces() -> None:
    labels = np.arange(8) % NUM_CLASSES
    faces = train_faces(labels, duplicates=[[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ConfigError, match="more than the 4 distinct"):
        make_folds(faces, k=5, seed=0)


def test_every_class_below_k() -> None:
    # Each class has fewer faces than folds: no stratified split exists, which is bad input.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ConfigError, match="k=5"):
            make_folds(train_faces(labels), k=5, seed=0)


def test_no_training_faces() -> None:
    faces = train_faces(np.array([], dtype=np.int64), n_test=10)
    with pytest.raises(DataError, match="no training faces"):
        make_folds(faces, k=5, seed=0)


def test_unlabelled_training_face() -> None:
    labels = np.arange(21) % NUM_CLASSES
    labels[4] = UNKNOWN_LABEL
    with pytest.raises(DataError, match="no label"):
        make_folds(train_faces(labels), k=3, seed=0)


# Writing and reading.


def test_write_read_round_trip(large_faces: FaceSet, large_folds: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "folds" / "folds.csv"
    write_folds(large_folds, path, data_fingerprint=large_faces.fingerprint(), k=5, seed=0)
    frame, metadata = read_folds(path)

    pd.testing.assert_frame_equal(frame, large_folds, check_dtype=False)
    assert metadata["k"] == 5
    assert metadata["seed"] == 0
    assert metadata["data_fingerprint"] == large_faces.fingerprint()
    assert metadata["n_faces"] == 2000
    assert sum(sum(counts.values()) for counts in metadata["class_counts_per_fold"].values()) == 2000


def test_read_folds_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folds file not found"):
        read_folds(tmp_path / "folds.csv")


def test_read_folds_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text("id,emotion\n0,3\n1,4\n")
    with pytest.raises(DataError, match="missing column 'fold'; found columns: id, emotion"):
        read_folds(path)


def test_read_folds_fold_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text("id,emotion,fold\n0,3,0\n1,4,1\n2,5,3\n")
    folds_metadata_path(path).write_text(json.dumps({"k": 3}))
    with pytest.raises(DataError, match="row 4: fold 3 is outside 0..2"):
        read_folds(path)


# Properties on small random face sets.


@st.composite
def small_face_sets(draw) -> tuple[FaceSet, int]:
    n = draw(st.integers(min_value=10, max_value=60))
    labels = np.array(draw(st.lists(st.integers(0, NUM_CLASSES - 1), min_size=n, max_size=n)))
    n_groups = draw(st.integers(min_value=0, max_value=n // 4))
    rows = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(n)
    duplicates = [rows[2 * i : 2 * i + 2 + (i % 2)].tolist() for i in range(n_groups) if 2 * i + 2 + (i % 2) <= n]
    k = draw(st.integers(min_value=2, max_value=5))
    # A stratified split needs one class with at least k faces. test_every_class_below_k covers the rest.
    assume(np.bincount(labels).max() >= k)
    return train_faces(labels, duplicates, seed=draw(st.integers(0, 1000))), k


@settings(max_examples=25, deadline=None)
@given(case=small_face_sets(), seed=st.integers(0, 10_000))
def test_fold_invariants(case: tuple[FaceSet, int], seed: int) -> None:
    faces, k = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frame = make_folds(faces, k=k, seed=seed)

    groups = duplicate_group_index(faces.images)
    assert sorted(frame["id"].tolist()) == faces.ids.tolist()
    assert frame["fold"].between(0, k - 1).all()
    assert pd.Series(frame["fold"].to_numpy()).groupby(groups).nunique().max() == 1


@settings(max_examples=10, deadline=None)
@given(case=small_face_sets(), seed=st.integers(0, 10_000))
def test_fold_determinism(case: tuple[FaceSet, int], seed: int) -> None:
    faces, k = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = make_folds(faces, k=k, seed=seed)
        second = make_folds(faces, k=k, seed=seed)
    pd.testing.assert_frame_equal(first, second)
