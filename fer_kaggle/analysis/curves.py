"""Learning curves of a run's folds, beside those of the fully connected baseline."""

from pathlib import Path

import pandas as pd

from fer_kaggle.analysis.select import finished_folds
from fer_kaggle.runs import RunPaths

__all__: list[str] = []


def _get_curve_info(runs_dir: Path, name: str) -> dict[int, pd.DataFrame]:
    """Return ``history.csv`` of each finished fold of run ``name``, by fold."""
    return {fold: pd.read_csv(RunPaths(runs_dir, name, fold).history) for fold in finished_folds(runs_dir, name)}


def _plot_learning_curves(curves: dict[str, dict[int, pd.DataFrame]], path: Path) -> None:
    """Draw train (dashed) and validation (solid) accuracy per epoch, one panel per run, one colour per fold.

    Args:
        curves: run name -> fold -> history frame; runs without folds are left out.
        path: PNG file to write.
    """
    import matplotlib.pyplot as plt

    from fer_kaggle.plots import save_figure

    drawn = {name: folds for name, folds in curves.items() if folds}
    if not drawn:
        raise ValueError("no run has a finished fold with a history to draw")
    figure, axes = plt.subplots(1, len(drawn), figsize=(5.5 * len(drawn), 3.8), squeeze=False, sharey=True, layout="constrained")
    for axis, (name, folds) in zip(axes[0], drawn.items()):
        for fold, frame in folds.items():
            color = f"C{fold % 10}"
            marker = "o" if len(frame) < 3 else None  # a line through one point draws nothing
            axis.plot(frame["epoch"], frame["train_acc"], color=color, linestyle="--", marker=marker, label=f"fold {fold} train")
            axis.plot(frame["epoch"], frame["valid_acc"], color=color, marker=marker, label=f"fold {fold} validation")
        axis.set(xlabel="epoch", ylabel="accuracy", title=name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    save_figure(figure, path)
