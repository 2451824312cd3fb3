"""Detect the layout of the competition files and read them into one :class:`FaceSet`.

Accepted layouts, distinguished by file names and CSV headers, with no flags:

1. ``fer2013.csv``: ``emotion,pixels,Usage`` with Usage in Training / PublicTest / PrivateTest.
2. ``icml_face_data.csv``: the same columns in the order ``emotion, Usage, pixels``.
3. Kaggle's pair ``train.csv`` (``emotion,pixels``) and ``test.csv`` (``pixels`` or
   ``id,pixels``), optionally with a labels file for part of the test set
   (``id,emotion`` or ``id,emotion,Usage``).
4. The course pair ``train.csv`` (``label,feature``) and ``test.csv`` (``id,feature``).
5. Image folders ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (or ``ROOT/test/*``
   unlabelled); ``Training``, ``PublicTest`` and ``PrivateTest`` folders are accepted too.
"""

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_kaggle.data.faceset import UNKNOWN_LABEL, FaceSet
from fer_kaggle.data.images import IMAGE_SUFFIXES, list_image_folder, read_image
from fer_kaggle.data.labels import parse_ids, parse_labels
from fer_kaggle.data.pixels import parse_pixels
from fer_kaggle.data.table import read_table, require_columns, spreadsheet_row
from fer_kaggle.errors import DataError

__all__ = ["read_sources", "USAGE_SPLITS", "LABELLED_TEST_PUBLIC_FRACTION"]

logger = logging.getLogger(__name__)

#: Usage values of the full-file layouts and the split each becomes.
USAGE_SPLITS = {"Training": "train", "PublicTest": "public", "PrivateTest": "private"}

#: Labels-file Usage values (Kaggle solution files and FER2013's names) and their split.
_LABEL_USAGE_SPLITS = {"public": "public", "publictest": "public", "private": "private", "privatetest": "private"}

#: Share of a labelled ``test`` image folder scored as the public split; the rest is private.
LABELLED_TEST_PUBLIC_FRACTION = 0.5

_FULL_NAMES = ("fer2013", "icml_face_data")
_CSV_SUFFIXES = (".csv", ".csv.gz")
_SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "publictest": "public", "privatetest": "private"}


@dataclass
class _Table:
    path: Path
    role: str  # full, train, test or labels
    frame: pd.DataFrame


def read_sources(sources: list[Path]) -> FaceSet:
    """Read competition files or folders in any accepted layout.

    Args:
        sources: files and/or folders. A folder is searched for the layout's file names
            (``fer2013.csv``, ``icml_face_data.csv``, ``train.csv``, ``test.csv``,
            ``*labels*.csv``, each optionally gzipped) or for image split folders.

    Returns:
        The faces of all splits. Training faces get ids 0..N-1 in file order; test faces
        keep their ``id`` column when the file has one, else 0..M-1 in file order.

    Raises:
        DataError: a missing or malformed file, or files of two different layouts.

    Notes:
        With a labels file that covers only public rows (Kaggle's usual case), the
        unlabelled rest of the test set is taken to be the private split, because
        Kaggle's test set is exactly public plus private. A labelled ``test`` image folder
        has no public/private marking, so a seeded half of it becomes ``public`` and the
        rest ``private``.
    """
    if not sources:
        raise DataError("no SOURCE given; pass a fer2013.csv, the Kaggle train.csv/test.csv, or a folder")

    csv_paths: list[Path] = []
    image_roots: list[Path] = []
    notes: Counter = Counter()
    for source in sources:
        if not source.exists():
            raise DataError(f"{source}: not found; check the path (put the Kaggle files in data/raw or pass DATA=...)")
        if source.is_dir():
            found_csv, found_images = _search_folder(source, notes)
            csv_paths.extend(found_csv)
            image_roots.extend(found_images)
        else:
            csv_paths.append(source)

    if csv_paths and image_roots:
        raise DataError(f"{image_roots[0]}: image folders and CSV files ({csv_paths[0]}) given together; pass one layout")
    if image_roots:
        if len(image_roots) > 1:
            raise DataError(f"{image_roots[1]}: more than one image-folder root given; pass one")
        return _read_image_root(image_roots[0], notes)
    return _read_csv_layout(csv_paths, notes)


def _search_folder(folder: Path, notes: Counter) -> tuple[list[Path], list[Path]]:
    """Return the layout's CSV files in ``folder``, or ``folder`` itself as an image root."""
    children = {child.name.lower(): child for child in folder.iterdir()}
    if any(name in _SPLIT_FOLDERS and child.is_dir() for name, child in children.items()):
        return [], [folder]

    csv_files = sorted(child for child in folder.iterdir() if child.is_file() and child.name.lower().endswith(_CSV_SUFFIXES))
    full = [path for path in csv_files if _stem(path) in _FULL_NAMES]
    if full:
        chosen = min(full, key=lambda path: _FULL_NAMES.index(_stem(path)))
        ignored = [path.name for path in csv_files if path != chosen]
        if ignored:
            logger.info("%s: using %s; ignoring %s", folder, chosen.name, ", ".join(ignored))
            notes[f"files ignored beside {chosen.name}"] += len(ignored)
        return [chosen], []

    picked = [path for path in csv_files if _stem(path) in ("train", "test") or "label" in _stem(path) or "solution" in _stem(path)]
    if not picked:
        archives = [child.name for child in folder.iterdir() if child.name.lower().endswith((".tar", ".tar.gz", ".tgz", ".zip"))]
        hint = f"; extract {archives[0]} first" if archives else ""
        found = ", ".join(sorted(children)) or "nothing"
        raise DataError(
            f"{folder}: no competition files found (found: {found}); expected fer2013.csv, icml_face_data.csv, "
            f"train.csv + test.csv, or train/ and test/ image folders{hint}"
        )
    return picked, []


def _stem(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem.lower()


def _role(path: Path, frame: pd.DataFrame) -> str:
    """Return the table's role from its name where the name is known, else from its columns."""
    stem = _stem(path)
    columns = set(frame.columns)
    if stem in _FULL_NAMES or {"pixels", "Usage"} <= columns:
        require_columns(frame, path, ("emotion", "pixels", "Usage"))
        return "full"
    if stem == "train" or {"emotion", "pixels"} <= columns:
        require_columns(frame, path, ("emotion", "pixels"))
        return "train"
    if stem == "test" or "pixels" in columns:
        require_columns(frame, path, ("pixels",))
        return "test"
    if "label" in stem or "solution" in stem or {"id", "emotion"} <= columns:
        require_columns(frame, path, ("id", "emotion"))
        return "labels"
    found = ", ".join(frame.columns)
    raise DataError(
        f"{path}: unrecognised columns ({found}); expected emotion,pixels,Usage (fer2013.csv), emotion,pixels "
        "or label,feature (train.csv), pixels or id,pixels or id,feature (test.csv), or id,emotion (labels)"
    )


def _read_csv_layout(paths: list[Path], notes: Counter) -> FaceSet:
    tables: list[_Table] = []
    for path in tqdm(paths, desc="reading", unit="file", disable=None if len(paths) > 1 else True, leave=False):
        frame = read_table(path)
        tables.append(_Table(path, _role(path, frame), frame))

    by_role: dict[str, list[_Table]] = {}
    for table in tables:
        by_role.setdefault(table.role, []).append(table)
    for role, found in by_role.items():
        if len(found) > 1:
            raise DataError(f"{found[1].path}: a second {role} file besides {found[0].path}; pass one")

    sources = [str(table.path) for table in tables]
    if "full" in by_role:
        others = [table for table in tables if table.role != "full"]
        if others:
            raise DataError(
                f"{others[0].path}: given together with {by_role['full'][0].path}, which already contains every split; pass one of them"
            )
        faces = _read_full(by_role["full"][0])
        faces.layout = "fer2013.csv"
    else:
        if "train" not in by_role:
            raise DataError(f"{tables[0].path}: no training file given; pass train.csv (emotion,pixels) as well")
        if "labels" in by_role and "test" not in by_role:
            raise DataError(f"{by_role['labels'][0].path}: a labels file needs its test.csv; pass test.csv as well")
        faces = _read_pair(by_role["train"][0], by_role.get("test", [None])[0], by_role.get("labels", [None])[0])
        faces.layout = "train.csv + test.csv"

    faces.sources = sources
    faces.notes.update(notes)
    return faces


def _read_full(table: _Table) -> FaceSet:
    frame, path = table.frame, table.path
    usage = frame["Usage"].fillna("").str.strip()
    unknown = ~usage.isin(list(USAGE_SPLITS))
    if unknown.any():
        seen = sorted(set(usage[unknown]))[:5]
        first = spreadsheet_row(int(np.flatnonzero(unknown.to_numpy())[0]))
        raise DataError(
            f"{path}: row {first}: Usage {seen[0]!r} is not one of Training, PublicTest, PrivateTest "
            f"(unexpected values seen: {', '.join(map(repr, seen))}); fix or remove those rows"
        )

    splits = usage.map(USAGE_SPLITS).to_numpy(dtype="U7")
    is_train = splits == "train"
    labels = parse_labels(frame["emotion"], path, required=is_train)
    images = parse_pixels(frame["pixels"].to_numpy(dtype=object), path)

    ids = np.empty(len(frame), dtype=np.int64)
    ids[is_train] = np.arange(int(is_train.sum()))
    ids[~is_train] = np.arange(int((~is_train).sum()))
    return FaceSet(images, labels, ids, splits)


def _read_pair(train: _Table, test: _Table | None, labels_table: _Table | None) -> FaceSet:
    train_labels = parse_labels(train.frame["emotion"], train.path, required=True)
    train_images = parse_pixels(train.frame["pixels"].to_numpy(dtype=object), train.path)
    train_ids = np.arange(len(train.frame), dtype=np.int64)
    if test is None:
        logger.warning("no test.csv given: only the training split is prepared")
        return FaceSet(train_images, train_labels, train_ids, np.full(len(train_ids), "train", dtype="U7"))

    test_images = parse_pixels(test.frame["pixels"].to_numpy(dtype=object), test.path)
    if "id" in test.frame.columns:
        test_ids = parse_ids(test.frame["id"], test.path)
    else:
        test_ids = np.arange(len(test.frame), dtype=np.int64)
    test_labels = np.full(len(test_ids), UNKNOWN_LABEL, dtype=np.int64)
    test_splits = np.full(len(test_ids), "test", dtype="U7")
    if labels_table is not None:
        _apply_test_labels(labels_table, test_ids, test_labels, test_splits)

    return FaceSet(
        np.concatenate([train_images, test_images]),
        np.concatenate([train_labels, test_labels]),
        np.concatenate([train_ids, test_ids]),
        np.concatenate([np.full(len(train_ids), "train", dtype="U7"), test_splits]),
    )


def _apply_test_labels(table: _Table, test_ids: np.ndarray, test_labels: np.ndarray, test_splits: np.ndarray) -> None:
    """Fill labels and splits of the test faces listed in a labels file, in place."""
    frame, path = table.frame, table.path
    ids = parse_ids(frame["id"], path)
    labels = parse_labels(frame["emotion"], path, required=True)

    position_of = pd.Series(np.arange(len(test_ids)), index=test_ids)
    missing = ~np.isin(ids, test_ids)
    if missing.any():
        index = int(missing.argmax())
        raise DataError(f"{path}: row {spreadsheet_row(index)}: id {ids[index]} is not in test.csv; check that both files are from the same download")

    if "Usage" in frame.columns:
        usage = frame["Usage"].fillna("").str.strip().str.lower()
        unknown = ~usage.isin(list(_LABEL_USAGE_SPLITS))
        if unknown.any():
            index = int(unknown.to_numpy().argmax())
            raise DataError(
                f"{path}: row {spreadsheet_row(index)}: Usage {frame['Usage'].iloc[index]!r} is not Public or Private "
                "(PublicTest and PrivateTest are accepted too)"
            )
        splits = usage.map(_LABEL_USAGE_SPLITS).to_numpy(dtype="U7")
    else:
        splits = np.full(len(ids), "public", dtype="U7")

    positions = position_of.loc[ids].to_numpy()
    test_labels[positions] = labels
    test_splits[positions] = splits
    if (splits == "public").all():
        # Kaggle's test set is public plus private: the unlabelled rest is the private split.
        test_splits[test_splits == "test"] = "private"


def _read_image_root(root: Path, notes: Counter) -> FaceSet:
    split_folders = {}
    for child in sorted(root.iterdir()):
        split = _SPLIT_FOLDERS.get(child.name.lower())
        if child.is_dir() and split is not None:
            if split in split_folders:
                raise DataError(f"{child}: a second {split} folder besides {split_folders[split]}; keep one")
            split_folders[split] = child
    if "train" not in split_folders:
        raise DataError(f"{root}: no train/ folder; expected ROOT/train/<class>/*.png and ROOT/test/...")

    images, labels, splits = [], [], []
    paths: dict[str, list[Path]] = {"train": [], "test": []}
    conversions: Counter = Counter()
    for split in ("train", "public", "private", "test"):
        if split not in split_folders:
            continue
        folder = list_image_folder(split_folders[split])
        if not folder.paths:
            raise DataError(f"{split_folders[split]}: no images found (accepted: {', '.join(sorted(IMAGE_SUFFIXES))})")
        if folder.set_aside:
            notes[f"non-image files set aside in {split_folders[split].name}/"] += len(folder.set_aside)
            logger.warning("%s: set aside %d non-image files, e.g. %s", split_folders[split], len(folder.set_aside), folder.set_aside[0].name)

        with tqdm(folder.paths, desc=f"reading {split_folders[split].name}/", unit="img", leave=False, disable=None) as progress:
            images.append(np.stack([read_image(path, conversions) for path in progress]))
        labels.append(folder.labels)
        splits.append(_image_splits(split, folder.labels))
        paths["train" if split == "train" else "test"].extend(folder.paths)

    notes.update(conversions)
    return FaceSet(
        np.concatenate(images),
        np.concatenate(labels),
        np.concatenate([np.arange(len(paths["train"]), dtype=np.int64), _test_image_ids(paths["test"])]),
        np.concatenate(splits),
        layout="image folders",
        sources=[str(root)],
        notes=dict(notes),
    )


def _test_image_ids(paths: list[Path]) -> np.ndarray:
    """Return test ids: the file names when all are unique integers (``123.png``), else 0..M-1 in order."""
    stems = [path.stem for path in paths]
    if stems and all(stem.isdigit() for stem in stems) and len(set(stems)) == len(stems):
        return np.asarray([int(stem) for stem in stems], dtype=np.int64)
    return np.arange(len(paths), dtype=np.int64)


def _image_splits(split: str, labels: np.ndarray) -> np.ndarray:
    if split != "test" or (labels == UNKNOWN_LABEL).all():
        return np.full(len(labels), split, dtype="U7")
    order = np.random.default_rng(0).permutation(len(labels))
    splits = np.full(len(labels), "private", dtype="U7")
    splits[order[: int(round(len(labels) * LABELLED_TEST_PUBLIC_FRACTION))]] = "public"
    return splits
