"""Confusion matrices of OOF and public-test predictions, and the most confused class pairs."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from fer_kaggle.constants import CLASS_NAMES, NUM_CLASSES

__all__ = ["ConfusionInfo", "ConfusedPair", "format_confused_pairs"]


@dataclass
class ConfusedPair:
    """Faces of class ``true`` predicted as class ``predicted``."""

    true: str
    predicted: str
    count: int
    share: float  # of the faces of class ``true``


@dataclass
class ConfusionInfo:
    """A confusion matrix (rows: true class, columns: predicted class) and its summary."""

    title: str
    counts: np.ndarray  # int64 (classes, classes)
    normalised: np.ndarray  # each row divided by its sum; a class with no faces has a row of zeros
    accuracy: float
    n_faces: int
    pairs: list[ConfusedPair]


def _get_confusion_info(labels: np.ndarray, predictions: np.ndarray, title: str, top: int = 5) -> ConfusionInfo:
    """Count true against predicted classes and list the ``top`` off-diagonal cells.

    Args:
        labels: true class per face, 0..6.
        predictions: predicted class per face, 0..6.
        title: what the predictions are, for figures and text.
        top: number of confused pairs to list; pairs with no face are left out.

    Raises:
        ValueError: the arrays differ in length or are empty.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if len(labels) != len(predictions):
        raise ValueError(f"labels ({len(labels)}) and predictions ({len(predictions)}) must have the same length")
    if len(labels) == 0:
        raise ValueError(f"{title}: no faces to build a confusion matrix from")

    counts = confusion_matrix(labels, predictions, labels=list(range(NUM_CLASSES)))
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=np.float64), where=totals > 0)

    off_diagonal = [(int(counts[t, p]), t, p) for t in range(NUM_CLASSES) for p in range(NUM_CLASSES) if t != p and counts[t, p] > 0]
    off_diagonal.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    pairs = [
        ConfusedPair(CLASS_NAMES[t], CLASS_NAMES[p], count, float(normalised[t, p]))
        for count, t, p in off_diagonal[:top]
    ]
    accuracy = float(np.trace(counts) / counts.sum())
    return ConfusionInfo(title, counts.astype(np.int64), normalised, accuracy, len(labels), pairs)


def format_confused_pairs(infos: list[ConfusionInfo]) -> str:
    """Write the most confused pairs of each matrix as a Markdown list."""
    lines = []
    for info in infos:
        lines.append(f"## {info.title}: accuracy {info.accuracy:.4f} on {info.n_faces} faces")
        lines.append("")
        if not info.pairs:
            lines.append("- no face was misclassified")
        for pair in info.pairs:
            lines.append(
                f"- {pair.true} taken for {pair.predicted}: {pair.count} faces ({pair.share:.1%} of {pair.true})"
            )
        lines.append("")
    return "\n".join(lines)


def _plot_confusion(info: ConfusionInfo, path: Path) -> None:
    """Draw counts (left) and row-normalised shares (right) with scikit-learn's ConfusionMatrixDisplay."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    from fer_kaggle.plots import save_figure

    figure, (count_axis, share_axis) = plt.subplots(1, 2, figsize=(13, 5.4), layout="constrained")
    ConfusionMatrixDisplay(info.counts, display_labels=list(CLASS_NAMES)).plot(
        ax=count_axis, cmap="Blues", colorbar=False, values_format="d", xticks_rotation=45
    )
    ConfusionMatrixDisplay(info.normalised, display_labels=list(CLASS_NAMES)).plot(
        ax=share_axis, cmap="Blues", colorbar=False, values_format=".2f", xticks_rotation=45
    )
    count_axis.set_title("counts")
    share_axis.set_title("share of each true class (rows sum to 1)")
    figure.suptitle(f"{info.title}: accuracy {info.accuracy:.4f} on {info.n_faces} faces")
    save_figure(figure, path)
