"""Reading every accepted input layout, the accepted file variants, and prepare's outputs."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CLASS_FOLDERS, FerFiles, write_csv, write_png
from fer_kaggle.constants import IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.data.faceset import UNKNOWN_LABEL, FaceSet, load_faceset
from fer_kaggle.data.layouts import read_sources
from fer_kaggle.data.prepare import prepare


def assert_same_faces(actual: FaceSet, expected: FaceSet) -> None:
    np.testing.assert_array_equal(actual.images, expected.images)
    np.testing.assert_array_equal(actual.labels, expected.labels)
    np.testing.assert_array_equal(actual.ids, expected.ids)
    np.testing.assert_array_equal(actual.splits, expected.splits)


def label_by_image(*faces_list) -> dict[bytes, int]:
    """Map each image's bytes to its label (synthetic images are all distinct)."""
    return {image.tobytes(): int(label) for faces in faces_list for image, label in zip(faces.images, faces.labels)}


# CSV layouts.


def test_fer2013_layout(fer_files: FerFiles) -> None:
    faces = read_sources([fer_files.write_fer2013()])
    n_train, n_public, n_private = len(fer_files.train), len(fer_files.public), len(fer_files.private)

    np.testing.assert_array_equal(faces.images, np.concatenate([fer_files.train.images, fer_files.test.images]))
    np.testing.assert_array_equal(faces.labels, np.concatenate([fer_files.train.labels, fer_files.test.labels]))
    assert faces.images.dtype == np.uint8
    assert faces.images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)
    assert faces.splits.tolist() == ["train"] * n_train + ["public"] * n_public + ["private"] * n_private
    assert faces.ids[faces.mask("train")].tolist() == list(range(n_train))
    assert faces.ids[faces.mask("public", "private")].tolist() == list(range(n_public + n_private))


def test_fer2013_ids_follow_file_order(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    order = np.random.default_rng(5).permutation(len(rows))
    path = write_csv(fer_files.root / "fer2013.csv", ["emotion", "pixels", "Usage"], [rows[i] for i in order])
    faces = read_sources([path])

    usages = np.array([rows[i][2] for i in order])
    is_train = usages == "Training"
    assert faces.ids[is_train].tolist() == list(range(int(is_train.sum())))
    assert faces.ids[~is_train].tolist() == list(range(int((~is_train).sum())))
    assert faces.labels.tolist() == [int(rows[i][0]) for i in order]


def test_fer2013_found_in_folder(fer_files: FerFiles) -> None:
    path = fer_files.write_fer2013()
    assert_same_faces(read_sources([path.parent]), read_sources([path]))


def test_icml_layout(fer_files: FerFiles) -> None:
    icml = read_sources([fer_files.write_icml()])
    plain = read_sources([fer_files.write_fer2013()])
    assert_same_faces(icml, plain)


def test_kaggle_pair_keeps_test_ids(fer_files: FerFiles) -> None:
    faces = read_sources([fer_files.write_kaggle_pair(labels=False)])
    n_train = len(fer_files.train)

    np.testing.assert_array_equal(faces.images, np.concatenate([fer_files.train.images, fer_files.test.images]))
    assert faces.ids[:n_train].tolist() == list(range(n_train))
    assert faces.ids[n_train:].tolist() == fer_files.test_ids.tolist()
    assert faces.labels[:n_train].tolist() == fer_files.train.labels.tolist()
    assert (faces.labels[n_train:] == UNKNOWN_LABEL).all()
    assert set(faces.splits[n_train:].tolist()) == {"test"}


def test_kaggle_pair_without_id_column(fer_files: FerFiles) -> None:
    faces = read_sources([fer_files.write_kaggle_pair(test_ids=False, labels=False)])
    n_train, n_test = len(fer_files.train), len(fer_files.test)
    assert faces.ids[n_train:].tolist() == list(range(n_test))
    np.testing.assert_array_equal(faces.images[n_train:], fer_files.test.images)


def test_kaggle_pair_public_labels(fer_files: FerFiles) -> None:
    faces = read_sources([fer_files.write_kaggle_pair()])
    n_train, n_public = len(fer_files.train), len(fer_files.public)
    test_labels = faces.labels[n_train:]
    test_splits = faces.splits[n_train:]

    assert test_labels[:n_public].tolist() == fer_files.public.labels.tolist()
    assert set(test_splits[:n_public].tolist()) == {"public"}
    assert (test_labels[n_public:] == UNKNOWN_LABEL).all()
    # Kaggle's test set is public plus private, so the unlabelled rest is private.
    assert set(test_splits[n_public:].tolist()) == {"private"}


def test_kaggle_pair_files_given_one_by_one(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair()
    files = [folder / "public_labels.csv", folder / "test.csv", folder / "train.csv"]
    assert_same_faces(read_sources(files), read_sources([folder]))


def test_kaggle_pair_gzipped(fer_files: FerFiles) -> None:
    plain = read_sources([fer_files.write_kaggle_pair("plain")])
    gzipped = read_sources([fer_files.write_kaggle_pair("gzipped", suffix=".csv.gz")])
    assert_same_faces(gzipped, plain)


def test_labels_file_with_usage(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair(labels=False)
    rows = [[str(face_id), str(label), "Public"] for face_id, label in zip(fer_files.public_ids, fer_files.public.labels)]
    private_ids = fer_files.test_ids[len(fer_files.public) :]
    rows += [[str(face_id), str(label), "Private"] for face_id, label in zip(private_ids, fer_files.private.labels)]
    write_csv(folder / "solution.csv", ["id", "emotion", "Usage"], rows)

    faces = read_sources([folder])
    n_train, n_public = len(fer_files.train), len(fer_files.public)
    assert faces.labels[n_train:].tolist() == fer_files.test.labels.tolist()
    assert set(faces.splits[n_train : n_train + n_public].tolist()) == {"public"}
    assert set(faces.splits[n_train + n_public :].tolist()) == {"private"}


def test_course_layout(fer_files: FerFiles) -> None:
    course = read_sources([fer_files.write_course_pair()])
    kaggle = read_sources([fer_files.write_kaggle_pair(labels=False)])
    assert_same_faces(course, kaggle)


# Variants of a CSV file that are read as they are.

VARIANTS = {
    "gzip_named_csv_gz": ("fer2013.csv.gz", {"compress": True}),
    "gzip_named_csv": ("fer2013.csv", {"compress": True}),
    "crlf": ("fer2013.csv", {"line_end": "\r\n"}),
    "utf8_bom": ("fer2013.csv", {"bom": True}),
    "quoted_pixels": ("fer2013.csv", {"quoted": ["pixels"]}),
    "spaces_after_commas": ("fer2013.csv", {"separator": ", "}),
    "trailing_blank_line": ("fer2013.csv", {"trailing_blank_lines": 1}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_csv_variant_equals_plain(tmp_path: Path, variant: str) -> None:
    name, options = VARIANTS[variant]
    plain = read_sources([FerFiles(tmp_path / "plain").write_fer2013()])
    changed = read_sources([FerFiles(tmp_path / variant).write_fer2013(name, **options)])
    assert_same_faces(changed, plain)


def test_all_variants_together(tmp_path: Path) -> None:
    plain = read_sources([FerFiles(tmp_path / "plain").write_fer2013()])
    options = {"compress": True, "line_end": "\r\n", "bom": True, "quoted": ["pixels"], "separator": ", ", "trailing_blank_lines": 2}
    changed = read_sources([FerFiles(tmp_path / "all").write_fer2013("fer2013.csv", **options)])
    assert_same_faces(changed, plain)


# Image folders.


def test_image_folders_labelled(fer_files: FerFiles) -> None:
    faces = read_sources([fer_files.write_image_folders()])
    expected = label_by_image(fer_files.train, fer_files.test)
    is_train = faces.mask("train")

    assert faces.layout == "image folders"
    assert len(faces) == len(fer_files.train) + len(fer_files.test)
    assert [expected[image.tobytes()] for image in faces.images] == faces.labels.tolist()
    assert sorted(faces.ids[is_train].tolist()) == list(range(len(fer_files.train)))
    assert set(faces.splits[~is_train].tolist()) == {"public", "private"}


def test_image_folders_unlabelled_test(fer_files: FerFiles) -> None:
    faces = read_sources([fer_files.write_image_folders(labelled_test=False)])
    test = faces.subset("test")
    assert len(test) == len(fer_files.test)
    assert (test.labels == UNKNOWN_LABEL).all()
    np.testing.assert_array_equal(test.images, fer_files.test.images)


FOLDER_NAME_STYLES = {
    "lower": CLASS_FOLDERS,
    "title": tuple(name.title() for name in CLASS_FOLDERS),
    "upper": tuple(name.upper() for name in CLASS_FOLDERS),
    "digits": tuple(str(label) for label in range(NUM_CLASSES)),
    "synonyms": ("anger", "disgusted", "fearful", "happiness", "sadness", "surprised", "Neutral"),
}


@pytest.mark.parametrize("style", list(FOLDER_NAME_STYLES))
def test_class_folder_names(fer_files: FerFiles, style: str) -> None:
    faces = read_sources([fer_files.write_image_folders(class_folders=FOLDER_NAME_STYLES[style])])
    expected = label_by_image(fer_files.train, fer_files.test)
    assert [expected[image.tobytes()] for image in faces.images] == faces.labels.tolist()


def test_class_folders_not_alphabetical(tmp_path: Path) -> None:
    # With only these folders, an alphabetical mapping (torchvision's ImageFolder) gives 0, 1, 2.
    rng = np.random.default_rng(0)
    for name in ("happy", "neutral", "sad"):
        for index in range(2):
            write_png(tmp_path / "images" / "train" / name / f"{index}.png", rng.integers(0, 256, (48, 48), dtype=np.uint8))

    faces = read_sources([tmp_path / "images"])
    assert sorted(set(faces.labels.tolist())) == [3, 4, 6]


def test_image_conversions_counted(tmp_path: Path) -> None:
    fer_files = FerFiles(tmp_path)
    root = fer_files.write_image_folders(labelled_test=False)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), mode="RGB").save(root / "train" / "happy" / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), mode="RGB").save(root / "train" / "sad" / "rgb.jpg")
    Image.fromarray(rng.integers(0, 256, (96, 96), dtype=np.uint8), mode="L").save(root / "test" / "big.png")

    faces, report = prepare([root], tmp_path / "out")
    notes = json.loads((tmp_path / "out" / "audit.json").read_text())["notes"]

    assert len(faces) == len(fer_files.train) + len(fer_files.test) + 3
    assert faces.images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)
    assert faces.notes["converted from RGB to grayscale"] == 2
    assert faces.notes["resized to 48x48"] == 2
    assert notes == faces.notes
    assert "converted from RGB to grayscale: 2" in (tmp_path / "out" / "audit.md").read_text()


def test_image_non_image_files_set_aside(fer_files: FerFiles) -> None:
    root = fer_files.write_image_folders()
    (root / "train" / "happy" / "notes.txt").write_text("not an image")
    (root / "train" / ".DS_Store").write_bytes(b"\x00\x01")

    faces = read_sources([root])
    assert len(faces) == len(fer_files.train) + len(fer_files.test)
    assert sum(faces.notes.values()) == 2


# prepare's output folder.


def read_solution(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_prepare_writes_cache(fer_files: FerFiles, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    faces, _ = prepare([fer_files.write_fer2013()], out)

    assert sorted(path.name for path in out.iterdir()) == ["audit.json", "audit.md", "faces.npz", "manifest.json", "solution.csv"]
    loaded = load_faceset(out)
    assert_same_faces(loaded, faces)
    assert loaded.images.dtype == np.uint8

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_faces"] == len(faces)
    assert manifest["fingerprint"] == faces.fingerprint()


def test_prepare_solution_fer2013(fer_files: FerFiles, tmp_path: Path) -> None:
    prepare([fer_files.write_fer2013()], tmp_path / "out")
    rows = read_solution(tmp_path / "out" / "solution.csv")
    n_public = len(fer_files.public)

    assert list(rows[0]) == ["id", "emotion", "Usage"]
    assert [int(row["id"]) for row in rows] == list(range(len(fer_files.test)))
    assert [int(row["emotion"]) for row in rows] == fer_files.test.labels.tolist()
    assert [row["Usage"] for row in rows] == ["Public"] * n_public + ["Private"] * len(fer_files.private)


def test_prepare_solution_public_labels(fer_files: FerFiles, tmp_path: Path) -> None:
    prepare([fer_files.write_kaggle_pair()], tmp_path / "out")
    rows = read_solution(tmp_path / "out" / "solution.csv")
    expected = sorted(zip(fer_files.public_ids.tolist(), fer_files.public.labels.tolist()))

    assert [(int(row["id"]), int(row["emotion"])) for row in rows] == expected
    assert {row["Usage"] for row in rows} == {"Public"}


def test_prepare_no_test_labels_no_solution(fer_files: FerFiles, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare([fer_files.write_fer2013()], out)
    prepare([fer_files.write_kaggle_pair(labels=False)], out)

    loaded = load_faceset(out)
    assert not (out / "solution.csv").exists()
    assert (loaded.labels[loaded.mask("test")] == UNKNOWN_LABEL).all()
