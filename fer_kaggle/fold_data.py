"""Arrays for one fold: training faces, the held-out fold and the test faces."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle.data.faceset import load_faceset
from fer_kaggle.errors import ConfigError, DataError
from fer_kaggle.folds import read_folds

__all__ = ["FoldData", "load_fold_data"]

logger = logging.getLogger(__name__)


@dataclass
class FoldData:
    """uint8 faces (N, 48, 48), labels and ids for the three roles a fold needs."""

    train_images: np.ndarray
    train_labels: np.ndarray
    valid_images: np.ndarray
    valid_labels: np.ndarray
    valid_ids: np.ndarray
    test_images: np.ndarray
    test_ids: np.ndarray
    k: int


def load_fold_data(data_dir: Path, folds_path: Path, fold: int, *, limit: int | None = None, seed: int = 0) -> FoldData:
    """Split the prepared training faces into fold ``fold`` (validation) and the rest.

    Args:
        data_dir: folder written by ``fer-kaggle prepare``.
        folds_path: CSV written by ``fer-kaggle folds`` for that folder.
        fold: the held-out fold, 0..k-1.
        limit: keep a seeded random subset of this many training faces (both roles).
        seed: seed of that subset.

    Raises:
        ConfigError: ``fold`` out of range, or ``limit`` too small.
        DataError: missing files, or a folds file made for other data.
    """
    faces = load_faceset(data_dir)
    folds, metadata = read_folds(folds_path)
    k = int(metadata.get("k", folds["fold"].max() + 1))
    if not 0 <= fold < k:
        raise ConfigError(f"fold {fold} is out of range for {folds_path} (k={k}); choose a fold from 0 to {k - 1}")

    expected = metadata.get("data_fingerprint")
    if expected is not None and expected != faces.fingerprint():
        raise DataError(
            f"{folds_path}: was made for other data than {data_dir}; run 'fer-kaggle folds --data {data_dir}' again"
        )

    train = faces.subset("train")
    row_of = {int(face_id): row for row, face_id in enumerate(train.ids)}
    unknown = [int(face_id) for face_id in folds["id"] if int(face_id) not in row_of]
    if unknown or len(folds) != len(train):
        raise DataError(
            f"{folds_path}: its ids do not match the training faces of {data_dir} "
            f"({len(folds)} rows vs {len(train)} faces); run 'fer-kaggle folds --data {data_dir}' again"
        )

    rows = np.array([row_of[int(face_id)] for face_id in folds["id"]])
    fold_of = np.empty(len(train), dtype=np.int64)
    fold_of[rows] = folds["fold"].to_numpy()

    keep = np.arange(len(train))
    if limit is not None:
        if limit < 2 * k:
            raise ConfigError(f"limit={limit} is too small for {k} folds; use at least {2 * k}")
        if limit < len(train):
            keep = np.sort(np.random.default_rng(seed).choice(len(train), size=limit, replace=False))
            logger.info("using %d of %d training faces (limit)", limit, len(train))

    is_valid = fold_of[keep] == fold
    train_rows, valid_rows = keep[~is_valid], keep[is_valid]
    test = faces.subset("public", "private", "test")
    return FoldData(
        train_images=train.images[train_rows],
        train_labels=train.labels[train_rows],
        valid_images=train.images[valid_rows],
        valid_labels=train.labels[valid_rows],
        valid_ids=train.ids[valid_rows],
        test_images=test.images,
        test_ids=test.ids,
        k=k,
    )
