"""Stratified, duplicate-aware K-fold splits of the training faces.

Exact-duplicate faces form one group and a group never straddles two folds, so no face is
both trained and validated on. Folds are stratified by emotion with scikit-learn's
``StratifiedGroupKFold``.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from fer_kaggle.atomic import atomic_write_text
from fer_kaggle.audit import duplicate_group_index
from fer_kaggle.constants import CLASS_NAMES, NUM_CLASSES
from fer_kaggle.data.faceset import FaceSet
from fer_kaggle.errors import ConfigError, DataError

__all__ = ["make_folds", "write_folds", "read_folds", "folds_metadata_path", "FOLD_COLUMNS"]

FOLD_COLUMNS = ("id", "emotion", "fold", "group")


def make_folds(faces: FaceSet, k: int = 5, seed: int = 0) -> pd.DataFrame:
    """Assign every training face to one of ``k`` folds.

    Args:
        faces: the prepared face set; only its ``train`` split is used.
        k: number of folds, at least 2.
        seed: seed of the shuffle; the same seed gives the same folds.

    Returns:
        A frame with columns ``id``, ``emotion``, ``fold`` (0..k-1) and ``group`` (the
        exact-duplicate group), sorted by id.

    Raises:
        ConfigError: ``k`` is below 2 or above the number of duplicate groups.
        DataError: the face set has no labelled training faces.

    Notes:
        A class with fewer faces than folds cannot appear in every fold; this warns.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"k must be an integer >= 2, got {k!r}")

    train = faces.subset("train")
    if len(train) == 0:
        raise DataError("the prepared data has no training faces; prepare a source with a training split")
    if (train.labels < 0).any():
        raise DataError("some training faces have no label; prepare the data again")

    groups = duplicate_group_index(train.images)
    n_groups = len(np.unique(groups))
    if k > n_groups:
        raise ConfigError(f"k={k} is more than the {n_groups} distinct training faces; choose k <= {n_groups}")

    class_counts = np.bincount(train.labels, minlength=NUM_CLASSES)
    if class_counts.max() < k:
        raise ConfigError(f"k={k} is more than the largest class ({class_counts.max()} training faces); choose k <= {class_counts.max()}")
    for label, count in enumerate(class_counts):
        if 0 < count < k:
            warnings.warn(
                f"class {CLASS_NAMES[label]} has {count} training faces, fewer than k={k} folds; some folds will lack it",
                UserWarning,
                stacklevel=2,
            )

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.full(len(train), -1, dtype=np.int64)
    for index, (_, valid) in enumerate(splitter.split(np.zeros(len(train)), train.labels, groups)):
        fold[valid] = index

    frame = pd.DataFrame({"id": train.ids, "emotion": train.labels, "fold": fold, "group": groups})
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def folds_metadata_path(folds_csv: Path) -> Path:
    """Return the JSON file written beside a folds CSV (``folds.csv`` -> ``folds.json``)."""
    return folds_csv.with_suffix(".json")


def write_folds(frame: pd.DataFrame, path: Path, *, data_fingerprint: str, k: int, seed: int) -> None:
    """Write the folds CSV and its metadata JSON atomically (temporary file, then rename).

    The metadata records the fingerprint of the prepared data, so that training can refuse
    a folds file made for other data.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    per_fold = {
        int(fold): {CLASS_NAMES[label]: int(count) for label, count in enumerate(np.bincount(part["emotion"], minlength=NUM_CLASSES))}
        for fold, part in frame.groupby("fold")
    }
    metadata = {"k": k, "seed": seed, "data_fingerprint": data_fingerprint, "n_faces": len(frame), "class_counts_per_fold": per_fold}

    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(folds_metadata_path(path), json.dumps(metadata, indent=2) + "\n")


def read_folds(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a folds CSV and its metadata JSON.

    Raises:
        DataError: a file is missing, a column is missing, or fold values are invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: folds file not found; run 'make folds' or 'fer-kaggle folds' first")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable folds CSV ({str(error).splitlines()[0]}); run 'fer-kaggle folds' again") from None
    missing = [column for column in ("id", "emotion", "fold") if column not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r}; found columns: {', '.join(frame.columns)}")
    for column in ("id", "emotion", "fold"):
        if not pd.api.types.is_integer_dtype(frame[column]):
            raise DataError(f"{path}: column {column!r} must hold integers; run 'fer-kaggle folds' again")

    metadata_path = folds_metadata_path(path)
    metadata = json.loads(metadata_path.read_text(encoding="utf-8")) if metadata_path.is_file() else {}
    k = int(metadata.get("k", frame["fold"].max() + 1))
    bad = ~frame["fold"].between(0, k - 1)
    if bad.any():
        raise DataError(f"{path}: row {int(bad.to_numpy().argmax()) + 2}: fold {frame['fold'][bad].iloc[0]} is outside 0..{k - 1}")
    return frame, metadata
