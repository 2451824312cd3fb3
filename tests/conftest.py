"""Shared fixtures: small synthetic FER files in every input layout, the real data, the CLI.

Synthetic faces are random uint8 pixels, so no two faces are equal unless a test makes
them so, and their labels cover all 7 classes. Rows are lists of strings that a test may
edit (a bad value, an extra field, an empty row for a blank line) before writing them.
"""

import gzip
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_kaggle.constants import IMAGE_SIZE, NUM_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Where the real data is looked for when the environment variable is not set.
DEFAULT_REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "fer2013"
REAL_DATA_ENV = "FER_KAGGLE_DATA"

#: Class folder names of the image layout in label order, as most image exports name them.
CLASS_FOLDERS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

Row = list[str]


@dataclass
class Faces:
    """Faces of one split: uint8 images (N, 48, 48) and int64 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def random_faces(n: int, seed: int) -> Faces:
    """Draw ``n`` random faces whose labels cover every class once ``n`` >= 7."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = rng.permutation(np.resize(np.arange(NUM_CLASSES), n)).astype(np.int64)
    return Faces(images, labels)


def pixel_text(image: np.ndarray) -> str:
    """Format an image as FER2013's ``pixels`` field: 2,304 space-separated integers."""
    return " ".join(map(str, image.ravel().tolist()))


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Row],
    *,
    separator: str = ",",
    quoted: Sequence[str] = (),
    line_end: str = "\n",
    bom: bool = False,
    compress: bool = False,
    trailing_blank_lines: int = 0,
) -> Path:
    """Write a CSV file from string fields and return its path.

    Args:
        path: file to write. Missing parent folders are created.
        header: column names, written as given.
        rows: data rows. An empty row becomes a blank line.
        separator: text between fields, e.g. ``", "`` for spaces after commas.
        quoted: names of the columns whose values are wrapped in double quotes.
        line_end: line terminator, e.g. ``"\\r\\n"``.
        bom: start the file with a UTF-8 byte-order mark.
        compress: gzip the content, whatever the file name.
        trailing_blank_lines: blank lines appended after the last row.
    """
    quoted_positions = {position for position, name in enumerate(header) if name.strip() in quoted}
    lines = [separator.join(header)]
    for row in rows:
        fields = [f'"{value}"' if position in quoted_positions else value for position, value in enumerate(row)]
        lines.append(separator.join(fields))
    text = line_end.join(lines) + line_end + line_end * trailing_blank_lines

    data = (("\ufeff" if bom else "") + text).encode("utf-8")
    if compress:
        data = gzip.compress(data, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write a grayscale uint8 image as PNG (lossless, so pixels read back exactly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image, mode="L").save(path)
    return path


class FerFiles:
    """One synthetic data set (train, public and private faces), written in any input layout.

    Test faces are the public faces followed by the private faces. Where a layout has an
    ``id`` column, test ids are ``test_ids`` (shuffled, starting at 1000), so that a test
    can tell kept ids from ids made up in file order.
    """

    def __init__(self, root: Path, n_train: int = 56, n_public: int = 12, n_private: int = 12, seed: int = 0) -> None:
        self.root = root
        self.train = random_faces(n_train, seed)
        self.public = random_faces(n_public, seed + 1)
        self.private = random_faces(n_private, seed + 2)
        n_test = n_public + n_private
        self.test_ids = 1000 + np.random.default_rng(seed + 3).permutation(n_test).astype(np.int64)

    @property
    def test(self) -> Faces:
        """Public then private faces, the order of the test rows in every layout."""
        return Faces(
            np.concatenate([self.public.images, self.private.images]),
            np.concatenate([self.public.labels, self.private.labels]),
        )

    @property
    def public_ids(self) -> np.ndarray:
        return self.test_ids[: len(self.public)]

    # Rows of each layout, as editable lists of strings.

    def fer2013_rows(self) -> list[Row]:
        """Rows ``emotion, pixels, Usage`` in FER2013's order: Training, PublicTest, PrivateTest."""
        rows = []
        for faces, usage in ((self.train, "Training"), (self.public, "PublicTest"), (self.private, "PrivateTest")):
            rows += [[str(label), pixel_text(image), usage] for image, label in zip(faces.images, faces.labels)]
        return rows

    def icml_rows(self) -> list[Row]:
        """Rows ``emotion, Usage, pixels``, the column order of ``icml_face_data.csv``."""
        return [[emotion, usage, pixels] for emotion, pixels, usage in self.fer2013_rows()]

    def train_rows(self) -> list[Row]:
        """Rows ``emotion, pixels`` of the training faces."""
        return [[str(label), pixel_text(image)] for image, label in zip(self.train.images, self.train.labels)]

    def test_rows(self, with_ids: bool = True) -> list[Row]:
        """Rows ``id, pixels`` (or ``pixels`` alone) of the test faces."""
        texts = [pixel_text(image) for image in self.test.images]
        if not with_ids:
            return [[text] for text in texts]
        return [[str(face_id), text] for face_id, text in zip(self.test_ids.tolist(), texts)]

    def public_label_rows(self) -> list[Row]:
        """Rows ``id, emotion`` for the public faces, like Kaggle's public_labels.csv."""
        return [[str(face_id), str(label)] for face_id, label in zip(self.public_ids.tolist(), self.public.labels.tolist())]

    # Whole layouts.

    def write_fer2013(self, name: str = "fer2013.csv", **options) -> Path:
        """Write the single-file layout and return its path, passing ``options`` to :func:`write_csv`."""
        return write_csv(self.root / name, ["emotion", "pixels", "Usage"], self.fer2013_rows(), **options)

    def write_icml(self, name: str = "icml_face_data.csv") -> Path:
        """Write ``icml_face_data.csv`` with its header ``emotion, Usage, pixels``."""
        return write_csv(self.root / name, ["emotion", " Usage", " pixels"], self.icml_rows())

    def write_kaggle_pair(
        self, folder: str = "kaggle", *, test_ids: bool = True, labels: bool = True, suffix: str = ".csv"
    ) -> Path:
        """Write ``train.csv`` + ``test.csv`` (+ ``public_labels.csv``) into a folder and return it."""
        directory = self.root / folder
        compress = suffix.endswith(".gz")
        write_csv(directory / f"train{suffix}", ["emotion", "pixels"], self.train_rows(), compress=compress)
        test_header = ["id", "pixels"] if test_ids else ["pixels"]
        write_csv(directory / f"test{suffix}", test_header, self.test_rows(with_ids=test_ids), compress=compress)
        if labels:
            write_csv(directory / "public_labels.csv", ["id", "emotion"], self.public_label_rows())
        return directory

    def write_course_pair(self, folder: str = "course") -> Path:
        """Write the course layout ``train.csv`` (``label,feature``) + ``test.csv`` (``id,feature``)."""
        directory = self.root / folder
        write_csv(directory / "train.csv", ["label", "feature"], self.train_rows())
        write_csv(directory / "test.csv", ["id", "feature"], self.test_rows())
        return directory

    def write_image_folders(
        self, folder: str = "images", class_folders: Sequence[str] = CLASS_FOLDERS, *, labelled_test: bool = True
    ) -> Path:
        """Write ``ROOT/train/<class>/<i>.png`` and ``ROOT/test/[<class>/]<i>.png``, and return ROOT.

        Args:
            folder: name of ROOT under the fixture's folder.
            class_folders: folder name of each class, in label order.
            labelled_test: put test images in class folders, or else directly in ``test/``.
        """
        root = self.root / folder
        for index, (image, label) in enumerate(zip(self.train.images, self.train.labels)):
            write_png(root / "train" / class_folders[label] / f"{index:04d}.png", image)
        for index, (image, label) in enumerate(zip(self.test.images, self.test.labels)):
            subfolder = root / "test" / class_folders[label] if labelled_test else root / "test"
            write_png(subfolder / f"{index:04d}.png", image)
        return root


@pytest.fixture
def fer_files(tmp_path: Path) -> FerFiles:
    """A synthetic data set of 56 training and 24 test faces, written under ``tmp_path``."""
    return FerFiles(tmp_path)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real FER2013 files in the Kaggle layout, or a skip when they are absent.

    Read from the folder named by ``FER_KAGGLE_DATA``, else ``<repo>/../shared/data/fer2013``.
    """
    configured = os.environ.get(REAL_DATA_ENV)
    directory = Path(configured) if configured else DEFAULT_REAL_DATA_DIR
    if not directory.is_dir():
        pytest.skip(f"real FER2013 data not found at {directory}; set {REAL_DATA_ENV} to the folder holding train.csv(.gz)")
    if not any((directory / name).is_file() for name in ("train.csv", "train.csv.gz", "fer2013.csv", "fer2013.csv.gz")):
        pytest.skip(f"{directory} has no train.csv(.gz) or fer2013.csv(.gz); set {REAL_DATA_ENV} to the real data folder")
    return directory


@pytest.fixture(scope="session")
def real_prepared(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real data prepared once per test session: (FaceSet, AuditReport, prepared folder)."""
    from fer_kaggle.data.prepare import prepare

    out = tmp_path_factory.mktemp("real_prepared")
    faces, report = prepare([real_data_dir], out)
    return faces, report, out


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python -m fer_kaggle ARGS`` as a subprocess and return the completed process."""

    def run(*args: str | Path, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "fer_kaggle", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )

    return run
