"""Audit a face set: class balance, exact duplicates, leakage, label conflicts, blank faces.

The audit reads only pixels and labels. Exact duplicates are byte-identical images; faces
that differ by a few grey levels (re-encoded copies) are not found.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer_kaggle.constants import CLASS_NAMES
from fer_kaggle.data.faceset import UNKNOWN_LABEL, FaceSet

__all__ = ["AuditReport", "DuplicateGroup", "compute_audit", "duplicate_group_index", "near_blank_mask"]


def duplicate_group_index(images: np.ndarray) -> np.ndarray:
    """Return an int64 array giving each image the index of its exact-duplicate group.

    Identical images share an index; a unique image has an index of its own. Indices are
    0..G-1 in order of each group's first image, so they are stable for a given input.
    """
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    rows = flat.view(np.dtype((np.void, flat.shape[1]))).ravel()
    _, first_index, inverse = np.unique(rows, return_index=True, return_inverse=True)
    order = np.argsort(first_index, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()].astype(np.int64)


def near_blank_mask(images: np.ndarray, max_std: float = 2.0, max_mode_fraction: float = 0.9) -> np.ndarray:
    """Return a boolean mask of near-blank images.

    An image is near-blank when its pixel standard deviation is below ``max_std`` grey
    levels, or when its most common grey level covers at least ``max_mode_fraction`` of
    its pixels (a flat image with a small mark or caption).
    """
    if max_std < 0:
        raise ValueError(f"max_std must be >= 0, got {max_std}")
    if not 0 < max_mode_fraction <= 1:
        raise ValueError(f"max_mode_fraction must be in (0, 1], got {max_mode_fraction}")

    flat = images.reshape(len(images), -1)
    std = flat.astype(np.float32).std(axis=1)
    offsets = np.arange(len(flat), dtype=np.int64)[:, None] * 256
    histogram = np.bincount((flat.astype(np.int64) + offsets).ravel(), minlength=256 * len(flat)).reshape(len(flat), 256)
    mode_fraction = histogram.max(axis=1) / flat.shape[1]
    return (std < max_std) | (mode_fraction >= max_mode_fraction)


@dataclass
class DuplicateGroup:
    """Faces with byte-identical pixels: parallel lists of split, id and label (-1 unknown)."""

    splits: list[str]
    ids: list[int]
    labels: list[int]

    @property
    def kind(self) -> str:
        """``train``, ``test`` or ``train+test`` (leakage) by the splits the faces come from."""
        in_train = "train" in self.splits
        in_test = any(split != "train" for split in self.splits)
        if in_train and in_test:
            return "train+test"
        return "train" if in_train else "test"

    @property
    def conflicting(self) -> bool:
        """Whether the known labels of the group disagree."""
        return len({label for label in self.labels if label != UNKNOWN_LABEL}) > 1


@dataclass
class AuditReport:
    """Findings of the audit, serialised to ``audit.json`` and ``audit.md``."""

    n_faces: int
    layout: str
    sources: list[str]
    class_counts: dict[str, dict[str, int]]
    notes: dict[str, int]
    duplicate_groups: list[DuplicateGroup]
    near_blank: list[dict]
    thresholds: dict[str, float] = field(default_factory=dict)

    def duplicate_summary(self) -> dict[str, int]:
        """Count groups and rows by kind; ``extra rows`` are rows beyond the first of each group."""
        summary = {"groups": len(self.duplicate_groups), "rows in groups": 0, "extra rows": 0}
        for kind in ("train", "train+test", "test"):
            summary[f"{kind} groups"] = 0
        summary["conflicting-label groups"] = 0
        for group in self.duplicate_groups:
            summary["rows in groups"] += len(group.ids)
            summary["extra rows"] += len(group.ids) - 1
            summary[f"{group.kind} groups"] += 1
            summary["conflicting-label groups"] += int(group.conflicting)
        return summary

    def to_dict(self) -> dict:
        """Return the JSON-serialisable report."""
        data = asdict(self)
        data["duplicate_summary"] = self.duplicate_summary()
        for group, raw in zip(self.duplicate_groups, data["duplicate_groups"]):
            raw["kind"] = group.kind
            raw["conflicting"] = group.conflicting
        return data

    def summary_lines(self) -> list[str]:
        """Return the short summary that ``prepare`` prints."""
        dup = self.duplicate_summary()
        return [
            f"exact duplicates: {dup['groups']} groups, {dup['rows in groups']} rows "
            f"({dup['extra rows']} beyond the first of each group)",
            f"  within train: {dup['train groups']} groups; train/test leakage: {dup['train+test groups']} groups; "
            f"within test: {dup['test groups']} groups",
            f"  with conflicting labels: {dup['conflicting-label groups']} groups",
            f"near-blank faces: {len(self.near_blank)}",
        ]

    def to_markdown(self) -> str:
        """Return the report as Markdown."""
        lines = ["# Data audit", "", f"Layout: {self.layout}. Faces: {self.n_faces}. Sources:", ""]
        lines += [f"- `{source}`" for source in self.sources]

        lines += ["", "## Class counts per split", "", "| split | " + " | ".join(CLASS_NAMES) + " | unknown | total |"]
        lines.append("|---" * (len(CLASS_NAMES) + 3) + "|")
        for split, counts in self.class_counts.items():
            values = [counts[name] for name in CLASS_NAMES] + [counts["unknown"]]
            lines.append(f"| {split} | " + " | ".join(map(str, values)) + f" | {sum(values)} |")

        if self.notes:
            lines += ["", "## Rows converted or set aside", ""]
            lines += [f"- {reason}: {count}" for reason, count in self.notes.items()]

        lines += ["", "## Exact duplicates", ""]
        lines += [f"- {key}: {value}" for key, value in self.duplicate_summary().items()]
        shown = sorted(self.duplicate_groups, key=lambda group: (group.kind != "train+test", not group.conflicting))[:50]
        if shown:
            lines += ["", "First groups (leakage and conflicts first):", "", "| kind | conflicting | faces (split:id:label) |", "|---|---|---|"]
            for group in shown:
                faces = ", ".join(f"{s}:{i}:{label}" for s, i, label in zip(group.splits, group.ids, group.labels))
                lines.append(f"| {group.kind} | {'yes' if group.conflicting else ''} | {faces} |")

        thresholds = ", ".join(f"{name} {value}" for name, value in self.thresholds.items())
        lines += ["", "## Near-blank faces", "", f"Thresholds: {thresholds}.", ""]
        if not self.near_blank:
            lines.append("None found.")
        lines += [f"- {face['split']}:{face['id']} label {face['label']}, std {face['std']:.2f}" for face in self.near_blank]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> None:
        """Write ``audit.json`` and ``audit.md`` into ``directory``."""
        (directory / "audit.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        (directory / "audit.md").write_text(self.to_markdown(), encoding="utf-8")


def compute_audit(faces: FaceSet, max_std: float = 2.0, max_mode_fraction: float = 0.9) -> AuditReport:
    """Audit ``faces``; see :func:`near_blank_mask` for the blank thresholds."""
    group_index = duplicate_group_index(faces.images)
    sizes = np.bincount(group_index)
    rows = np.flatnonzero(sizes[group_index] > 1)
    rows = rows[np.argsort(group_index[rows], kind="stable")]
    boundaries = np.flatnonzero(np.diff(group_index[rows])) + 1
    groups = [
        DuplicateGroup(
            splits=faces.splits[members].tolist(),
            ids=faces.ids[members].tolist(),
            labels=faces.labels[members].tolist(),
        )
        for members in np.split(rows, boundaries)
        if len(members)
    ]

    blank = near_blank_mask(faces.images, max_std, max_mode_fraction)
    stds = faces.images[blank].reshape(int(blank.sum()), -1).astype(np.float32).std(axis=1) if blank.any() else []
    near_blank = [
        {"split": str(split), "id": int(face_id), "label": int(label), "std": float(std)}
        for split, face_id, label, std in zip(faces.splits[blank], faces.ids[blank], faces.labels[blank], stds)
    ]

    return AuditReport(
        n_faces=len(faces),
        layout=faces.layout,
        sources=list(faces.sources),
        class_counts=faces.class_counts(),
        notes=dict(faces.notes),
        duplicate_groups=groups,
        near_blank=near_blank,
        thresholds={"max_std": max_std, "max_mode_fraction": max_mode_fraction},
    )
