"""Solution files, Kaggle-style scoring per split, the paired bootstrap and the score command."""

from pathlib import Path

import numpy as np
import pytest

from fer_kaggle.cli import main
from fer_kaggle.errors import DataError
from fer_kaggle.leaderboard import bootstrap_gain, read_solution, score_submission
from fer_kaggle.submission import write_submission

#: 10 public and 10 private faces, ids 100-119; the label of id i is i % 7.
SOLUTION_IDS = np.arange(100, 120)
SOLUTION_LABELS = SOLUTION_IDS % 7


def write_solution(path: Path, usage: tuple[str, str] = ("Public", "Private"), private_labels: bool = True) -> Path:
    lines = ["id,emotion,Usage"]
    for index, (face_id, label) in enumerate(zip(SOLUTION_IDS, SOLUTION_LABELS)):
        public = index < 10
        text = str(label) if public or private_labels else ""
        lines.append(f"{face_id},{text},{usage[0] if public else usage[1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def predictions_with(public_right: int, private_right: int) -> np.ndarray:
    """Labels that are right on the first ``public_right`` public and ``private_right`` private faces."""
    labels = (SOLUTION_LABELS + 1) % 7
    labels[:public_right] = SOLUTION_LABELS[:public_right]
    labels[10 : 10 + private_right] = SOLUTION_LABELS[10 : 10 + private_right]
    return labels


def test_round_trip_known_accuracy(tmp_path: Path) -> None:
    solution = read_solution(write_solution(tmp_path / "solution.csv"))
    path = write_submission(tmp_path / "sub.csv", SOLUTION_IDS, predictions_with(7, 4), metadata={})

    scores = score_submission(path, solution)

    assert scores["public"].accuracy == pytest.approx(0.7)
    assert scores["private"].accuracy == pytest.approx(0.4)
    assert scores["public"].n_scored == 10


def test_fer2013_usage_names(tmp_path: Path) -> None:
    solution = read_solution(write_solution(tmp_path / "solution.csv", usage=("PublicTest", "PrivateTest")))

    assert solution.splits.tolist() == ["public"] * 10 + ["private"] * 10


def test_split_without_labels_is_na(tmp_path: Path) -> None:
    solution = read_solution(write_solution(tmp_path / "solution.csv", private_labels=False))
    path = write_submission(tmp_path / "sub.csv", SOLUTION_IDS, predictions_with(5, 10), metadata={})

    scores = score_submission(path, solution)

    assert scores["public"].accuracy == pytest.approx(0.5)
    assert scores["private"].accuracy is None
    assert scores["private"].format() == "n/a (no labels)"


def test_unlabelled_test_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("id,pixels\n1,0 0 0\n")

    with pytest.raises(DataError, match="no 'emotion' column"):
        read_solution(path)


def test_all_empty_labels_rejected(tmp_path: Path) -> None:
    path = tmp_path / "solution.csv"
    path.write_text("id,emotion,Usage\n1,,Public\n2,,Private\n")

    with pytest.raises(DataError, match="no row has an emotion"):
        read_solution(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,emotion,Usage\n1,3,Public\n2,9,Private\n", "row 3: emotion '9'"),
        ("id,emotion,Usage\n1,3,Public\n2,4,Training\n", "row 3: Usage 'Training'"),
        ("id,emotion,Usage\n1,3,Public\n1,4,Private\n", "row 3: id 1 repeats"),
        ("id,emotion\n1,3\n", "missing column 'Usage'"),
        ("id,emotion,Usage\nx,3,Public\n", "row 2: id 'x'"),
    ],
)
def test_bad_solution_rejected(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "solution.csv"
    path.write_text(text)

    with pytest.raises(DataError, match=message):
        read_solution(path)


def test_bootstrap_contains_true_gain() -> None:
    rng = np.random.default_rng(7)
    reference = rng.random(4000) < 0.60
    better = reference | (rng.random(4000) < 0.25)  # true gain: 0.40 * 0.25 = 0.10

    interval = bootstrap_gain(better, reference, seed=0)

    assert interval.low < 0.10 < interval.high
    assert interval.low > 0.0
    assert interval.low < interval.gain < interval.high


def test_bootstrap_is_deterministic() -> None:
    rng = np.random.default_rng(8)
    first_correct, second_correct = rng.random(500) < 0.7, rng.random(500) < 0.6

    first = bootstrap_gain(first_correct, second_correct, seed=3)
    second = bootstrap_gain(first_correct, second_correct, seed=3)

    assert (first.low, first.high) == (second.low, second.high)


def test_bootstrap_identical_submissions() -> None:
    correct = np.array([True, False, True, True])

    interval = bootstrap_gain(correct, correct)

    assert (interval.gain, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_score_cli_prints_splits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solution = write_solution(tmp_path / "solution.csv", private_labels=False)
    path = write_submission(tmp_path / "sub.csv", SOLUTION_IDS, predictions_with(10, 0), metadata={})

    status = main(["score", str(path), "--solution", str(solution)])

    assert status == 0
    assert capsys.readouterr().out.strip() == f"{path}: public 1.0000 (10 faces), private n/a (no labels)"


def test_score_cli_bad_submission_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solution = write_solution(tmp_path / "solution.csv")
    path = tmp_path / "sub.csv"
    path.write_text("id,label\n" + "".join(f"{face_id},3\n" for face_id in SOLUTION_IDS[:-1]) + "999,3\n")

    status = main(["score", str(path), "--solution", str(solution)])

    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.startswith("fer-kaggle: error:")
    assert "row 21: id 999" in error
    assert len(error.splitlines()) == 1


def test_score_cli_rejects_test_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    test_csv = tmp_path / "test.csv"
    test_csv.write_text("id,pixels\n100,0 0\n")
    path = write_submission(tmp_path / "sub.csv", SOLUTION_IDS, predictions_with(1, 1), metadata={})

    status = main(["score", str(path), "--solution", str(test_csv)])

    assert status == 2
    assert "no 'emotion' column" in capsys.readouterr().err


def test_unlabelled_ids_beside_solution(tmp_path: Path) -> None:
    """prepare lists only labelled faces in solution.csv; the cache beside it adds the rest as test ids."""
    from fer_kaggle.data.prepare import prepare
    from fer_kaggle.synth import write_synthetic_csv

    csv_path = write_synthetic_csv(tmp_path / "raw", n_train=30, n_public=5, n_private=5, seed=1)
    faces, _ = prepare([csv_path], tmp_path / "prepared")
    solution_path = tmp_path / "prepared" / "solution.csv"
    lines = solution_path.read_text().splitlines()
    solution_path.write_text("\n".join(line for line in lines if not line.endswith("Private")) + "\n")
    test_ids = faces.ids[faces.mask("public", "private", "test")]
    path = write_submission(tmp_path / "sub.csv", test_ids, np.zeros(len(test_ids), dtype=int), metadata={})

    scores = score_submission(path, read_solution(solution_path))

    assert scores["public"].n_scored == 5
    assert scores["private"].accuracy is None
