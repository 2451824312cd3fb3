"""The in-memory face set and its on-disk cache (``faces.npz`` + ``manifest.json``)."""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE, SPLITS
from fer_kaggle.errors import DataError

__all__ = ["FaceSet", "load_faceset", "CACHE_FILE", "MANIFEST_FILE", "SOLUTION_FILE", "UNKNOWN_LABEL"]

CACHE_FILE = "faces.npz"
MANIFEST_FILE = "manifest.json"
SOLUTION_FILE = "solution.csv"

#: Label stored for faces whose emotion is not known (unlabelled test rows).
UNKNOWN_LABEL = -1

#: Kaggle's Usage value in a solution file for each labelled test split.
SOLUTION_USAGE = {"public": "Public", "private": "Private"}


@dataclass
class FaceSet:
    """Faces of every split, in one set of aligned arrays.

    Attributes:
        images: uint8 array (N, 48, 48).
        labels: int8 array (N,), class index 0-6 or ``UNKNOWN_LABEL``.
        ids: int64 array (N,). Training ids and test ids are separate ranges: a face is
            identified by (split group, id), where split group is train or test.
        splits: string array (N,), one of ``train``, ``public``, ``private``, ``test``
            (``test`` is a test face whose leaderboard split is not known).
        layout: the detected input layout, for the record.
        sources: the files read.
        notes: counts of rows converted or set aside, by reason.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    splits: np.ndarray
    layout: str = ""
    sources: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, *splits: str) -> np.ndarray:
        """Return a boolean mask of the faces in any of ``splits``."""
        return np.isin(self.splits, splits)

    def subset(self, *splits: str) -> "FaceSet":
        """Return the faces of the given splits, in their stored order."""
        keep = self.mask(*splits)
        return FaceSet(self.images[keep], self.labels[keep], self.ids[keep], self.splits[keep], self.layout, self.sources, self.notes)

    def fingerprint(self) -> str:
        """Return a SHA-256 over images, labels, ids and splits: equal sets have equal fingerprints."""
        digest = hashlib.sha256()
        for array in (self.images, self.labels.astype(np.int8), self.ids.astype(np.int64), self.splits.astype("U7")):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Return per split the number of faces of each class (and ``unknown``)."""
        counts: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            labels = self.labels[self.splits == split]
            if len(labels) == 0:
                continue
            tally = Counter(int(label) for label in labels)
            row = {name: tally.get(index, 0) for index, name in enumerate(CLASS_NAMES)}
            row["unknown"] = tally.get(UNKNOWN_LABEL, 0)
            counts[split] = row
        return counts

    def manifest(self) -> dict:
        """Return the JSON-serialisable description written beside the cache."""
        return {
            "format": 1,
            "layout": self.layout,
            "sources": self.sources,
            "fingerprint": self.fingerprint(),
            "n_faces": len(self),
            "class_counts": self.class_counts(),
            "notes": self.notes,
        }

    def save(self, directory: Path) -> None:
        """Write ``faces.npz`` and ``manifest.json`` into ``directory`` (expected to exist)."""
        np.savez(
            directory / CACHE_FILE,
            images=self.images,
            labels=self.labels.astype(np.int8),
            ids=self.ids.astype(np.int64),
            splits=self.splits.astype("U7"),
        )
        (directory / MANIFEST_FILE).write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")

    def solution_rows(self) -> list[tuple[int, int, str]]:
        """Return ``(id, emotion, Usage)`` for each labelled public or private face, sorted by id."""
        rows = []
        for split, usage in SOLUTION_USAGE.items():
            keep = (self.splits == split) & (self.labels != UNKNOWN_LABEL)
            rows.extend(zip(self.ids[keep].tolist(), self.labels[keep].tolist(), [usage] * int(keep.sum())))
        return sorted(rows)


def load_faceset(directory: str | Path) -> FaceSet:
    """Load a face set written by ``fer-kaggle prepare``.

    Raises:
        DataError: the folder or its cache is missing or unreadable.
    """
    directory = Path(directory)
    cache = directory / CACHE_FILE
    if not cache.is_file():
        raise DataError(f"{cache}: prepared data not found; run 'fer-kaggle prepare SOURCE --out {directory}' first")

    try:
        with np.load(cache, allow_pickle=False) as arrays:
            images, labels, ids, splits = (arrays[name] for name in ("images", "labels", "ids", "splits"))
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{directory}: prepared data is unreadable ({error}); run 'fer-kaggle prepare' again") from None

    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{cache}: images have shape {images.shape}, expected (N, {IMAGE_SIZE}, {IMAGE_SIZE})")
    return FaceSet(
        images=images,
        labels=labels.astype(np.int64),
        ids=ids,
        splits=splits,
        layout=manifest.get("layout", ""),
        sources=manifest.get("sources", []),
        notes=manifest.get("notes", {}),
    )
