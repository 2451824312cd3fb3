"""Learning-curve figures shared by training, analysis and the report."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be set first)
import pandas as pd  # noqa: E402

from fer_kaggle.atomic import atomic_write_bytes  # noqa: E402

__all__ = ["plot_learning_curves", "save_figure"]


def save_figure(figure: plt.Figure, path: Path, dpi: int = 110) -> None:
    """Save ``figure`` as PNG atomically and close it."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())


def plot_learning_curves(histories: dict[str, pd.DataFrame], path: Path, title: str = "") -> None:
    """Draw train and validation accuracy per epoch (left) and loss (right) for each history.

    Args:
        histories: label -> frame with columns epoch, train_acc, valid_acc, train_loss,
            valid_loss (``history.csv`` of a run).
        path: PNG file to write.
        title: figure title.
    """
    figure, (acc_axis, loss_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    for index, (label, frame) in enumerate(histories.items()):
        color = f"C{index % 10}"
        marker = "o" if len(frame) < 3 else None  # a line through one point draws nothing
        prefix = "" if len(histories) == 1 else f"{label} "
        acc_axis.plot(frame["epoch"], frame["train_acc"], color=color, linestyle="--", marker=marker, label=f"{prefix}train")
        acc_axis.plot(frame["epoch"], frame["valid_acc"], color=color, marker=marker, label=f"{prefix}validation")
        loss_axis.plot(frame["epoch"], frame["train_loss"], color=color, linestyle="--", marker=marker, label=f"{prefix}train")
        loss_axis.plot(frame["epoch"], frame["valid_loss"], color=color, marker=marker, label=f"{prefix}validation")

    acc_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss (train: with smoothing/mixup)")
    for axis in (acc_axis, loss_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    save_figure(figure, path)
