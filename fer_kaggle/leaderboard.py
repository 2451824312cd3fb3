"""A local Kaggle leaderboard: read a solution file, score submissions on the public and
private splits, and estimate the gain of one submission over another by paired bootstrap.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.data.faceset import CACHE_FILE, load_faceset
from fer_kaggle.errors import DataError
from fer_kaggle.submission import DEFAULT_LABEL_COLUMN, Submission, check_submission_ids, read_submission

__all__ = [
    "LEADERBOARD_SPLITS",
    "Solution",
    "SplitScore",
    "GainInterval",
    "read_solution",
    "expected_test_ids",
    "correct_by_split",
    "score_labels",
    "score_submission",
    "bootstrap_gain",
]

logger = logging.getLogger(__name__)

LEADERBOARD_SPLITS: tuple[str, ...] = ("public", "private")

#: Usage values of a solution file: Kaggle's, and FER2013's names for the test splits.
USAGE_SPLITS = {"public": "public", "publictest": "public", "private": "private", "privatetest": "private"}

UNLABELLED = -1


@dataclass
class Solution:
    """Test labels with their leaderboard split.

    Attributes:
        path: the solution file.
        ids: int64 (N,) test ids.
        labels: int64 (N,) classes, ``-1`` for a row without a label.
        splits: (N,) ``public`` or ``private``.
    """

    path: Path
    ids: np.ndarray
    labels: np.ndarray
    splits: np.ndarray


@dataclass
class SplitScore:
    """Accuracy on one leaderboard split; ``accuracy`` is None when the split has no labelled face."""

    split: str
    accuracy: float | None
    n_scored: int

    def format(self) -> str:
        """Return ``0.6512 (3589 faces)``, or ``n/a (no labels)``."""
        if self.accuracy is None:
            return "n/a (no labels)"
        return f"{self.accuracy:.4f} ({self.n_scored} faces)"


@dataclass
class GainInterval:
    """Mean accuracy gain of a submission over a reference and its bootstrap confidence interval."""

    gain: float
    low: float
    high: float
    confidence: float
    n_resamples: int


def read_solution(path: Path) -> Solution:
    """Read a solution file ``id,emotion,Usage`` (Usage Public/Private or PublicTest/PrivateTest).

    An empty emotion marks a row whose label is not known: its id is still a test id,
    but it is not scored.

    Raises:
        DataError: missing file, no ``emotion`` column or no label at all (an unlabelled
            test file such as Kaggle's ``test.csv``), a missing column, an invalid label
            or Usage, or a repeated id. The message names the first offending row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: solution file not found; run 'fer-kaggle prepare' on data with test labels, or check the path")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable solution file ({error}); expected a CSV with header 'id,emotion,Usage'") from None
    frame.columns = [str(column).strip() for column in frame.columns]

    if "emotion" not in frame.columns:
        raise DataError(
            f"{path}: has no 'emotion' column (columns: {', '.join(frame.columns)}), so it contains no test labels; "
            "an unlabelled test file cannot score submissions. Use the solution.csv that 'fer-kaggle prepare' "
            "writes from labelled test data"
        )
    for column in ("id", "Usage"):
        if column not in frame.columns:
            raise DataError(f"{path}: missing column {column!r} (columns: {', '.join(frame.columns)}); expected 'id,emotion,Usage'")

    ids = _parse_column(frame["id"], path, "id", allow_empty=False)
    labels = _parse_column(frame["emotion"], path, "emotion", allow_empty=True)
    bad_label = (labels != UNLABELLED) & ((labels < 0) | (labels >= NUM_CLASSES))
    if bad_label.any():
        row = int(np.argmax(bad_label))
        raise DataError(f"{path}: row {row + 2}: emotion {frame['emotion'].iloc[row]!r} is not a class 0-{NUM_CLASSES - 1}")
    if (labels == UNLABELLED).all():
        raise DataError(
            f"{path}: no row has an emotion, so it contains no test labels; "
            "use the solution.csv that 'fer-kaggle prepare' writes from labelled test data"
        )

    usage = frame["Usage"].str.strip().str.lower()
    splits = usage.map(USAGE_SPLITS)
    if splits.isna().any():
        row = int(splits.isna().to_numpy().argmax())
        raise DataError(
            f"{path}: row {row + 2}: Usage {frame['Usage'].iloc[row]!r} is invalid; expected Public or Private (also PublicTest, PrivateTest)"
        )

    repeated = pd.Series(ids).duplicated().to_numpy()
    if repeated.any():
        row = int(np.argmax(repeated))
        raise DataError(f"{path}: row {row + 2}: id {ids[row]} repeats; a solution has one row per test id")
    return Solution(path, ids, labels, splits.to_numpy(dtype=str))


def _parse_column(values: pd.Series, path: Path, column: str, *, allow_empty: bool) -> np.ndarray:
    """Parse a string column as int64, mapping empty fields to ``UNLABELLED`` where allowed."""
    stripped = values.str.strip()
    empty = stripped == ""
    numbers = pd.to_numeric(stripped.where(~empty), errors="coerce")
    invalid = (numbers.isna() & ~empty) | (numbers.notna() & (numbers != numbers.round()))
    if not allow_empty:
        invalid |= empty
    if invalid.any():
        row = int(invalid.to_numpy().argmax())
        raise DataError(f"{path}: row {row + 2}: {column} {values.iloc[row]!r} is not an integer")
    return numbers.fillna(UNLABELLED).to_numpy(dtype=np.int64)


def expected_test_ids(solution: Solution) -> np.ndarray:
    """Return every test id a submission must cover: the solution's, plus those of a prepared cache beside it.

    ``fer-kaggle prepare`` lists only labelled faces in ``solution.csv``. When the
    solution sits in a prepared folder (with ``faces.npz``), that folder's unlabelled
    test faces are test ids as well.
    """
    directory = solution.path.parent
    if not (directory / CACHE_FILE).is_file():
        return solution.ids
    faces = load_faceset(directory)
    test_ids = faces.ids[faces.mask("public", "private", "test")]
    return np.union1d(solution.ids, test_ids.astype(np.int64))


def correct_by_split(submission: Submission, solution: Solution) -> dict[str, np.ndarray]:
    """Return, per leaderboard split, a bool array: was each labelled face predicted right.

    Faces are in solution order, so arrays of two submissions line up face by face.
    The submission's ids must already be checked (:func:`check_submission_ids`).
    """
    label_of = pd.Series(submission.labels, index=submission.ids)
    predicted = label_of.reindex(solution.ids).to_numpy()
    correct = {}
    for split in LEADERBOARD_SPLITS:
        scored = (solution.splits == split) & (solution.labels != UNLABELLED)
        correct[split] = predicted[scored] == solution.labels[scored]
    return correct


def score_labels(correct: dict[str, np.ndarray]) -> dict[str, SplitScore]:
    """Turn :func:`correct_by_split` arrays into the accuracy of each split."""
    return {
        split: SplitScore(split, float(hits.mean()) if len(hits) else None, int(len(hits)))
        for split, hits in correct.items()
    }


def score_submission(
    path: Path,
    solution: Solution,
    *,
    expected_ids: np.ndarray | None = None,
    label_column: str = DEFAULT_LABEL_COLUMN,
) -> dict[str, SplitScore]:
    """Validate a submission as Kaggle would, then return its public and private accuracy.

    Args:
        path: the submission CSV.
        solution: from :func:`read_solution`.
        expected_ids: test ids the submission must cover; default :func:`expected_test_ids`.
        label_column: the submission's second column name.

    Raises:
        DataError: as :func:`fer_kaggle.submission.read_submission` and
            :func:`fer_kaggle.submission.check_submission_ids`.
    """
    submission = read_submission(path, label_column=label_column)
    if expected_ids is None:
        expected_ids = expected_test_ids(solution)
    check_submission_ids(submission, expected_ids, source=str(solution.path))
    return score_labels(correct_by_split(submission, solution))


def bootstrap_gain(
    correct: np.ndarray,
    reference_correct: np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> GainInterval:
    """Estimate the accuracy gain of a submission over a reference by paired bootstrap over faces.

    Both arrays mark, face by face in the same order, whether a prediction was right.
    Each resample draws faces with replacement and keeps the pair together, so the
    interval accounts for the two submissions being scored on the same faces. The
    interval is the percentile interval of scipy.stats.bootstrap. The same seed gives
    the same interval.

    Raises:
        ValueError: arrays of different lengths or with fewer than two faces.
    """
    correct = np.asarray(correct, dtype=np.float64)
    reference_correct = np.asarray(reference_correct, dtype=np.float64)
    if correct.shape != reference_correct.shape or correct.ndim != 1:
        raise ValueError(f"correct {correct.shape} and reference_correct {reference_correct.shape} must be 1-D of equal length")
    if len(correct) < 2:
        raise ValueError(f"need at least 2 faces to bootstrap, got {len(correct)}")

    differences = correct - reference_correct
    gain = float(differences.mean())
    if np.all(differences == differences[0]):
        # Every resample has the same mean; scipy would warn about degenerate data.
        return GainInterval(gain, gain, gain, confidence, n_resamples)

    result = bootstrap(
        (differences,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return GainInterval(gain, float(interval.low), float(interval.high), confidence, n_resamples)
