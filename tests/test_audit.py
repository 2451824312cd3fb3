"""The data audit on crafted face sets with known duplicates, label conflicts and blank faces."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import FerFiles, write_csv
from fer_kaggle.audit import compute_audit, duplicate_group_index, near_blank_mask
from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.data.faceset import UNKNOWN_LABEL, FaceSet
from fer_kaggle.data.prepare import prepare

N_TRAIN, N_PUBLIC, N_PRIVATE = 12, 6, 6


def crafted_faces() -> FaceSet:
    """Return 24 faces (ids: train 0-11, public 0-5, private 6-11) with known problems.

    Exact duplicates (split:id):
      - train:1 = train:5, same label
      - train:2 = train:7 = train:9, labels 3, 3, 4 (conflict)
      - train:4 = public:1, same label (leakage)
      - train:6 = private:8, labels differ (leakage, conflict)
      - public:0 = private:7 (within test)
      - train:10 = private:9, private label unknown (leakage, no conflict)
    Near-blank: train:11 (constant), public:5 (flat with a small mark), private:11 (std < 2).
    Not blank: train:8 (half black, half white).
    """
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_PUBLIC + N_PRIVATE
    images = rng.integers(0, 256, size=(n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % NUM_CLASSES
    splits = np.array(["train"] * N_TRAIN + ["public"] * N_PUBLIC + ["private"] * N_PRIVATE)
    ids = np.concatenate([np.arange(N_TRAIN), np.arange(N_PUBLIC + N_PRIVATE)])

    def row(split: str, face_id: int) -> int:
        return int(np.flatnonzero((splits == split) & (ids == face_id))[0])

    def copy(source: tuple[str, int], target: tuple[str, int], label: int | None = None) -> None:
        images[row(*target)] = images[row(*source)]
        labels[row(*target)] = labels[row(*source)] if label is None else label

    copy(("train", 1), ("train", 5))
    labels[row("train", 2)] = 3
    copy(("train", 2), ("train", 7), label=3)
    copy(("train", 2), ("train", 9), label=4)
    copy(("train", 4), ("public", 1))
    copy(("train", 6), ("private", 8), label=(labels[row("train", 6)] + 1) % NUM_CLASSES)
    copy(("public", 0), ("private", 7))
    copy(("train", 10), ("private", 9), label=UNKNOWN_LABEL)

    images[row("train", 11)] = 128
    marked = np.full((IMAGE_SIZE, IMAGE_SIZE), 255, dtype=np.uint8)
    marked[:10, :10] = 0
    images[row("public", 5)] = marked
    images[row("private", 11)] = rng.integers(99, 102, size=(IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images[row("train", 8)] = 0
    images[row("train", 8), :, IMAGE_SIZE // 2 :] = 255

    return FaceSet(images, labels, ids, splits, layout="crafted", sources=["crafted"])


def group_members(report, split: str, face_id: int) -> list[tuple[str, int]]:
    """Return the (split, id) pairs of the duplicate group that contains ``split:face_id``."""
    for group in report.duplicate_groups:
        members = list(zip(group.splits, group.ids))
        if (split, face_id) in members:
            return sorted(members)
    return []


@pytest.fixture(scope="module")
def report():
    return compute_audit(crafted_faces())


def test_duplicate_summary_counts(report) -> None:
    summary = report.duplicate_summary()
    assert summary["groups"] == 6
    assert summary["rows in groups"] == 13
    assert summary["extra rows"] == 7
    assert summary["train groups"] == 2
    assert summary["train+test groups"] == 3
    assert summary["test groups"] == 1
    assert summary["conflicting-label groups"] == 2


def test_duplicate_group_members(report) -> None:
    assert group_members(report, "train", 5) == [("train", 1), ("train", 5)]
    assert group_members(report, "train", 9) == [("train", 2), ("train", 7), ("train", 9)]
    assert group_members(report, "public", 1) == [("public", 1), ("train", 4)]
    assert group_members(report, "private", 8) == [("private", 8), ("train", 6)]
    assert group_members(report, "private", 7) == [("private", 7), ("public", 0)]
    assert group_members(report, "train", 10) == [("private", 9), ("train", 10)]
    assert group_members(report, "train", 0) == []


def test_duplicate_group_kinds(report) -> None:
    kinds = {tuple(group_members(report, group.splits[0], group.ids[0])): group.kind for group in report.duplicate_groups}
    assert kinds[(("train", 1), ("train", 5))] == "train"
    assert kinds[(("public", 1), ("train", 4))] == "train+test"
    assert kinds[(("private", 7), ("public", 0))] == "test"


def test_conflicting_groups(report) -> None:
    conflicting = sorted(group_members(report, group.splits[0], group.ids[0]) for group in report.duplicate_groups if group.conflicting)
    assert conflicting == [[("private", 8), ("train", 6)], [("train", 2), ("train", 7), ("train", 9)]]


def test_near_blank_faces(report) -> None:
    found = sorted((face["split"], face["id"]) for face in report.near_blank)
    assert found == [("private", 11), ("public", 5), ("train", 11)]


def test_class_counts_per_split(report) -> None:
    faces = crafted_faces()
    for split in ("train", "public", "private"):
        labels = faces.labels[faces.splits == split]
        expected = np.bincount(labels[labels >= 0], minlength=NUM_CLASSES)
        assert [report.class_counts[split][name] for name in CLASS_NAMES] == expected.tolist()
        assert report.class_counts[split]["unknown"] == int((labels == UNKNOWN_LABEL).sum())


def test_report_json_round_trip(report, tmp_path: Path) -> None:
    report.write(tmp_path)
    data = json.loads((tmp_path / "audit.json").read_text())
    assert data["duplicate_summary"] == report.duplicate_summary()
    assert sum(group["conflicting"] for group in data["duplicate_groups"]) == 2
    assert len(data["near_blank"]) == 3


def test_report_markdown_lists_leakage(report, tmp_path: Path) -> None:
    report.write(tmp_path)
    markdown = (tmp_path / "audit.md").read_text()
    assert "# Data audit" in markdown
    assert "train:4:" in markdown
    assert "public:1:" in markdown
    assert "| train+test |" in markdown


def test_summary_lines(report) -> None:
    text = "\n".join(report.summary_lines())
    assert "6 groups, 13 rows (7 beyond the first" in text
    assert "train/test leakage: 3 groups" in text
    assert "near-blank faces: 3" in text


def test_no_duplicates_in_random_faces() -> None:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(30, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    faces = FaceSet(images, np.arange(30) % NUM_CLASSES, np.arange(30), np.full(30, "train"))
    report = compute_audit(faces)
    assert report.duplicate_groups == []
    assert report.near_blank == []


def test_group_index_order() -> None:
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    images[3] = images[1]
    images[4] = images[0]
    assert duplicate_group_index(images).tolist() == [0, 1, 2, 1, 0]


def test_near_blank_thresholds() -> None:
    image = np.full((1, IMAGE_SIZE, IMAGE_SIZE), 200, dtype=np.uint8)
    image[0, :12, :12] = 0  # 144 of 2,304 pixels: the mode covers 93.75%
    assert near_blank_mask(image, max_mode_fraction=0.9).tolist() == [True]
    assert near_blank_mask(image, max_mode_fraction=0.95).tolist() == [False]


@pytest.mark.parametrize(("max_std", "max_mode_fraction"), [(-1.0, 0.9), (2.0, 0.0), (2.0, 1.5)])
def test_near_blank_invalid_thresholds(max_std: float, max_mode_fraction: float) -> None:
    with pytest.raises(ValueError):
        near_blank_mask(np.zeros((1, 4, 4), dtype=np.uint8), max_std, max_mode_fraction)


def test_prepare_audit_of_csv(fer_files: FerFiles, tmp_path: Path) -> None:
    rows = fer_files.fer2013_rows()
    n_train = len(fer_files.train)
    rows[5][1] = rows[0][1]
    rows[n_train + 1][1] = rows[3][1]
    rows[n_train + 2][1] = " ".join(["17"] * 2304)
    path = write_csv(fer_files.root / "fer2013.csv", ["emotion", "pixels", "Usage"], rows)

    prepare([path], tmp_path / "out")
    audit = json.loads((tmp_path / "out" / "audit.json").read_text())
    groups = sorted((group["kind"], sorted(zip(group["splits"], group["ids"]))) for group in audit["duplicate_groups"])

    assert groups == [("train", [("train", 0), ("train", 5)]), ("train+test", [("public", 1), ("train", 3)])]
    assert audit["duplicate_summary"]["extra rows"] == 2
    assert [(face["split"], face["id"]) for face in audit["near_blank"]] == [("public", 2)]
    assert audit["class_counts"]["train"]["unknown"] == 0
