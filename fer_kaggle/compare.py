"""The local leaderboard table: every single model and every blend, on OOF, public and private.

Numbers come from the ensemble summary (OOF accuracy, weights) and from scoring the
submission CSVs against the solution file, so the table scores exactly the files that
would be uploaded. Each blend also gets its gain over the reference model, the single
model with the best OOF accuracy (chosen without test labels), with a paired bootstrap
interval over test faces.
"""

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_kaggle.atomic import atomic_write_text
from fer_kaggle.data.faceset import SOLUTION_FILE
from fer_kaggle.ensemble import ENSEMBLE_SUBMISSION, load_summary
from fer_kaggle.errors import DataError
from fer_kaggle.leaderboard import (
    LEADERBOARD_SPLITS,
    GainInterval,
    Solution,
    bootstrap_gain,
    correct_by_split,
    expected_test_ids,
    read_solution,
    score_labels,
)
from fer_kaggle.submission import DEFAULT_LABEL_COLUMN, check_submission_ids, read_metadata, read_submission

__all__ = ["CompareRow", "Comparison", "build_comparison", "format_markdown", "write_comparison"]

logger = logging.getLogger(__name__)


@dataclass
class CompareRow:
    """One submission on the local leaderboard.

    Attributes:
        name: submission stem: a model name or ``ensemble-<method>``.
        kind: ``model`` or ``blend``.
        parameters: what defines it (parameter count and TTA, or blend weights).
        oof_accuracy: accuracy of its OOF predictions.
        scores: accuracy per leaderboard split, None where the split has no labels.
        gains: per split, a blend's gain over the reference model; empty for models.
    """

    name: str
    kind: str
    parameters: str
    oof_accuracy: float
    scores: dict[str, float | None]
    gains: dict[str, GainInterval | None] = field(default_factory=dict)


@dataclass
class Comparison:
    """The leaderboard rows and how they were scored."""

    experiment: str
    rows: list[CompareRow]
    reference: str
    solution_path: Path | None
    n_resamples: int
    seed: int


def _format_params(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:.2f}M"
    return f"{count / 1e3:.1f}k"


def _model_parameters(model: dict[str, Any]) -> str:
    tta = model["tta"]
    if isinstance(tta, bool):
        tta_text = "TTA" if tta else "no TTA"
    else:
        tta_text = f"TTA per fold {tta}"
    return f"{model['arch']}, {_format_params(int(model['params']))} params, {len(model['folds'])} folds, {tta_text}"


def _blend_parameters(blend: dict[str, Any]) -> str:
    if blend["weights"] is None:
        details = blend.get("details", {})
        return f"logistic regression on OOF log-probabilities, C={details.get('C')}"
    return ", ".join(f"{name} {weight:.2f}" for name, weight in blend["weights"].items())


def _read_scored(path: Path, experiment: str, solution: Solution | None, expected_ids: np.ndarray | None) -> dict[str, np.ndarray]:
    """Validate one submission of the experiment and return its per-split correctness (empty without a solution)."""
    metadata = read_metadata(path)
    if metadata is None:
        raise DataError(f"{path}: not found or written without metadata; run 'make submission' for this experiment")
    if metadata.get("experiment") != experiment:
        raise DataError(
            f"{path}: was written for experiment {metadata.get('experiment')!r}, not {experiment!r}; "
            "run 'make submission' with this experiment, or pass --submissions with its folder"
        )
    submission = read_submission(path, label_column=metadata.get("label_column", DEFAULT_LABEL_COLUMN))
    if solution is None:
        return {}
    check_submission_ids(submission, expected_ids, source=str(solution.path))
    return correct_by_split(submission, solution)


def build_comparison(
    experiment_path: Path,
    *,
    submissions_dir: Path = Path("submissions"),
    solution_path: Path | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Score every submission of an experiment and compute each blend's gain intervals.

    Args:
        experiment_path: the experiment YAML file; its summary comes from ``make ensemble``.
        submissions_dir: the folder ``make submission`` wrote to.
        solution_path: the solution file; default ``<data>/solution.csv``. When it does
            not exist, public and private are n/a and a UserWarning is issued.
        n_resamples: bootstrap resamples per interval.
        seed: bootstrap seed.

    Raises:
        DataError: ensemble or submissions missing, submissions of another experiment,
            an invalid submission, or an unreadable or unlabelled solution file.
    """
    experiment, summary = load_summary(experiment_path)
    default_solution = solution_path is None
    solution_path = Path(experiment.data) / SOLUTION_FILE if default_solution else Path(solution_path)
    solution: Solution | None = None
    expected_ids = None
    if solution_path.is_file() or not default_solution:
        solution = read_solution(solution_path)
        expected_ids = expected_test_ids(solution)
    else:
        warnings.warn(f"{solution_path} not found (test labels unknown): public and private scores are n/a", UserWarning, stacklevel=2)

    entries = [(model["name"], "model", _model_parameters(model), model["oof_accuracy"]) for model in summary["models"]]
    entries += [(blend["source"], "blend", _blend_parameters(blend), blend["oof_accuracy"]) for blend in summary["blends"]]
    correct = {name: _read_scored(Path(submissions_dir) / f"{name}.csv", summary["experiment"], solution, expected_ids) for name, *_ in entries}

    reference = max(summary["models"], key=lambda model: model["oof_accuracy"])["name"]
    rows = []
    for name, kind, parameters, oof_accuracy in entries:
        scores = {split: None for split in LEADERBOARD_SPLITS}
        if correct[name]:
            scores = {split: score.accuracy for split, score in score_labels(correct[name]).items()}
        gains: dict[str, GainInterval | None] = {}
        if kind == "blend":
            for split in LEADERBOARD_SPLITS:
                hits = correct[name].get(split)
                enough = hits is not None and len(hits) >= 2
                gains[split] = bootstrap_gain(hits, correct[reference][split], n_resamples=n_resamples, seed=seed) if enough else None
        rows.append(CompareRow(name, kind, parameters, float(oof_accuracy), scores, gains))

    return Comparison(summary["experiment"], rows, reference, solution_path if solution else None, n_resamples, seed)


def _format_accuracy(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _format_gain(gain: GainInterval | None) -> str:
    if gain is None:
        return "n/a"
    return f"{gain.gain * 100:+.2f} pp [{gain.low * 100:+.2f}, {gain.high * 100:+.2f}]"


def format_markdown(comparison: Comparison) -> str:
    """Return the comparison as a Markdown table with a note on how gains were computed."""
    header = ["submission", "kind", "parameters", "OOF acc", "public", "private", "gain public (95% CI)", "gain private (95% CI)"]
    lines = [f"# Local leaderboard: {comparison.experiment}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in comparison.rows:
        gains = [_format_gain(row.gains.get(split)) if row.kind == "blend" else "" for split in LEADERBOARD_SPLITS]
        cells = [row.name, row.kind, row.parameters, f"{row.oof_accuracy:.4f}", *(_format_accuracy(row.scores[split]) for split in LEADERBOARD_SPLITS), *gains]
        lines.append("| " + " | ".join(cells) + " |")

    solution = comparison.solution_path or "none (test labels unknown)"
    lines += [
        "",
        f"Solution: {solution}. `{ENSEMBLE_SUBMISSION}.csv` is a copy of the selected blend's submission.",
        f"Gain: blend accuracy minus that of `{comparison.reference}`, the single model with the best OOF accuracy, "
        f"in percentage points; 95% paired bootstrap interval over test faces ({comparison.n_resamples} resamples, seed {comparison.seed}).",
    ]
    return "\n".join(lines) + "\n"


def _get_compare_info(comparison: Comparison) -> dict[str, Any]:
    """Return the numbers the figure draws: accuracies per row (NaN for n/a) and blend gains in percentage points."""
    names = [row.name for row in comparison.rows]
    accuracy = {"OOF": np.array([row.oof_accuracy for row in comparison.rows])}
    for split in LEADERBOARD_SPLITS:
        accuracy[split] = np.array([np.nan if row.scores[split] is None else row.scores[split] for row in comparison.rows])

    blends = [row for row in comparison.rows if row.kind == "blend"]
    gains = {}
    for split in LEADERBOARD_SPLITS:
        intervals = [row.gains.get(split) for row in blends]
        gains[split] = {
            "gain": np.array([np.nan if item is None else item.gain * 100 for item in intervals]),
            "low": np.array([np.nan if item is None else item.low * 100 for item in intervals]),
            "high": np.array([np.nan if item is None else item.high * 100 for item in intervals]),
        }
    return {"names": names, "accuracy": accuracy, "blend_names": [row.name for row in blends], "gains": gains, "reference": comparison.reference}


def _plot_compare(info: dict[str, Any], path: Path, title: str = "") -> None:
    """Draw accuracy bars per submission (left) and blend gains with their intervals (right)."""
    import matplotlib.pyplot as plt

    from fer_kaggle.plots import save_figure

    names = info["names"]
    figure, (accuracy_axis, gain_axis) = plt.subplots(1, 2, figsize=(12, 0.45 * max(len(names), 4) + 1.5))

    positions = np.arange(len(names))
    height = 0.8 / len(info["accuracy"])
    for index, (label, values) in enumerate(info["accuracy"].items()):
        accuracy_axis.barh(positions + index * height, np.nan_to_num(values), height=height, label=label, color=f"C{index}")
    accuracy_axis.set_yticks(positions + height * (len(info["accuracy"]) - 1) / 2, names, fontsize=8)
    accuracy_axis.invert_yaxis()
    accuracy_axis.set(xlabel="accuracy", title="accuracy (n/a drawn as empty)")
    accuracy_axis.legend(fontsize=7)
    accuracy_axis.grid(axis="x", alpha=0.3)

    blend_positions = np.arange(len(info["blend_names"]))
    for index, (split, values) in enumerate(info["gains"].items()):
        offsets = blend_positions + (index - 0.5) * 0.3
        errors = np.vstack([values["gain"] - values["low"], values["high"] - values["gain"]])
        gain_axis.errorbar(values["gain"], offsets, xerr=errors, fmt="o", capsize=3, label=split, color=f"C{index + 1}")
    gain_axis.axvline(0.0, color="grey", linewidth=1)
    gain_axis.set_yticks(blend_positions, info["blend_names"], fontsize=8)
    gain_axis.invert_yaxis()
    gain_axis.set(xlabel=f"gain over {info['reference']} (pp, 95% CI)", title="blend gain over the best single model")
    gain_axis.legend(fontsize=7)
    gain_axis.grid(axis="x", alpha=0.3)

    if title:
        figure.suptitle(title, fontsize=9)
    save_figure(figure, path)


def write_comparison(comparison: Comparison, reports_dir: Path = Path("reports")) -> tuple[Path, Path]:
    """Write ``compare.md`` and ``compare.png`` into ``reports_dir`` and return their paths."""
    markdown_path = Path(reports_dir) / "compare.md"
    figure_path = Path(reports_dir) / "compare.png"
    atomic_write_text(markdown_path, format_markdown(comparison))
    _plot_compare(_get_compare_info(comparison), figure_path, title=f"local leaderboard: {comparison.experiment}")
    return markdown_path, figure_path
