"""One static HTML page with everything the pipeline produced: ``reports/index.html``.

The page needs no server. Every image is inside the reports folder (learning curves are
copied from the run folders into ``curves/``) and linked by a relative path, so the
folder can be zipped or moved as a whole. Markdown outputs (the audit, the comparison,
the confused pairs) are rendered with Python-Markdown.
"""

import html
import json
import logging
from pathlib import Path
from urllib.parse import quote

import markdown

from fer_kaggle.analysis.analyze import FIGURE_FILES
from fer_kaggle.analysis.select import ModelScore, finished_folds, score_models
from fer_kaggle.atomic import atomic_write_bytes, atomic_write_text
from fer_kaggle.constants import CLASS_NAMES
from fer_kaggle.errors import FerKaggleError
from fer_kaggle.experiment import ExperimentConfig, RunConfig, load_experiment
from fer_kaggle.folds import folds_metadata_path
from fer_kaggle.runs import RunPaths

__all__ = ["build_report"]

logger = logging.getLogger(__name__)

#: Analysis figures in the order the page shows them, with their captions.
ANALYSIS_FIGURES: tuple[tuple[str, str], ...] = (
    ("learning_curves", "Learning curves of each fold (train dashed, validation solid), beside the DNN baseline's"),
    ("confusion_oof", "Confusion matrix of the OOF predictions"),
    ("confusion_public", "Confusion matrix on the public test labels (test predictions averaged over folds)"),
    ("saliency", "Saliency for the predicted class: vanilla gradient, SmoothGrad and Grad-CAM (wrong predictions in red)"),
    ("filters", "Filter visualisation by gradient ascent"),
    ("activations", "Output maps of one layer for one face"),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1, h2, h3 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1em 0; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { flex: 1 1 45%; margin: 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
.missing { color: #a60; font-style: italic; }
nav a { margin-right: 1em; }
"""


def build_report(experiment_path: str | Path = Path("configs/experiment.yaml"), reports_dir: Path = Path("reports")) -> Path:
    """Write ``reports_dir/index.html`` for the experiment and return its path.

    Sections: the data audit, the folds' class counts, each run's folds and learning
    curves, the comparison of models and blends (``compare.md`` / ``compare.png``), and
    the analysis of each analysed run (``analysis/<run>/``). A section whose inputs do not
    exist yet names the make target that writes them.

    Raises:
        ConfigError: the experiment config is missing or invalid.
    """
    experiment_path = Path(experiment_path)
    reports_dir = Path(reports_dir)
    experiment, runs = load_experiment(experiment_path)

    sections = [
        ("audit", "Data audit", _audit_section(experiment)),
        ("folds", "Folds", _folds_section(experiment)),
        ("models", "Models", _models_section(experiment, runs, reports_dir)),
        ("compare", "Comparison of models and blends", _compare_section(reports_dir)),
        ("analysis", "Analysis of single models", _analysis_section(runs, reports_dir)),
    ]
    title = f"fer_kaggle report: {experiment.name}"
    nav = "".join(f'<a href="#{key}">{html.escape(heading)}</a>' for key, heading, _ in sections)
    body = "\n".join(f'<section id="{key}">\n<h2>{html.escape(heading)}</h2>\n{content}\n</section>' for key, heading, content in sections)
    page = (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n'
        f"<body>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>Experiment <code>{html.escape(str(experiment_path))}</code>: data <code>{html.escape(str(experiment.data))}</code>, "
        f"folds <code>{html.escape(str(experiment.folds))}</code>, runs <code>{html.escape(str(experiment.runs_dir))}</code>.</p>\n"
        f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )

    path = reports_dir / "index.html"
    atomic_write_text(path, page)
    logger.info("wrote %s", path)
    return path


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text, quote=False)}</p>'


def _markdown(text: str, drop_title: bool = False) -> str:
    """Render Markdown written by this pipeline, one heading level below the page's sections.

    With ``drop_title`` a first line that is a level-1 heading is left out, for files
    whose title repeats the section heading.
    """
    if drop_title and text.startswith("# "):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return markdown.markdown(text, extensions=["tables"]).replace("<h2>", "<h4>").replace("</h2>", "</h4>").replace(
        "<h1>", "<h3>"
    ).replace("</h1>", "</h3>")


def _figure(reports_dir: Path, path: Path, caption: str) -> str:
    """Return an image linked by its path relative to the page, with a caption."""
    relative = quote(path.relative_to(reports_dir).as_posix())
    return (
        f'<figure><a href="{relative}"><img src="{relative}" alt="{html.escape(caption)}"></a>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _audit_section(experiment: ExperimentConfig) -> str:
    audit = Path(experiment.data) / "audit.md"
    if not audit.is_file():
        return _missing(f"No audit at {audit}: run 'make folds' (fer-kaggle prepare) first.")
    return _markdown(audit.read_text(encoding="utf-8"), drop_title=True)


def _folds_section(experiment: ExperimentConfig) -> str:
    metadata_path = folds_metadata_path(Path(experiment.folds))
    if not metadata_path.is_file():
        return _missing(f"No folds at {metadata_path}: run 'make folds' first.")
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    per_fold = metadata.get("class_counts_per_fold", {})

    header = "".join(f"<th>{name}</th>" for name in CLASS_NAMES)
    rows = []
    for fold in sorted(per_fold, key=int):
        counts = [int(per_fold[fold].get(name, 0)) for name in CLASS_NAMES]
        cells = "".join(f"<td>{count}</td>" for count in counts)
        rows.append(f"<tr><td>fold {html.escape(str(fold))}</td>{cells}<td>{sum(counts)}</td></tr>")
    intro = (
        f"<p>{metadata.get('k', len(per_fold))} folds of {metadata.get('n_faces', '?')} training faces, "
        f"seed {metadata.get('seed', '?')}; class counts of each fold:</p>"
    )
    return f"{intro}<table><tr><th>fold</th>{header}<th>total</th></tr>{''.join(rows)}</table>"


def _models_section(experiment: ExperimentConfig, runs: list[RunConfig], reports_dir: Path) -> str:
    """Return a score table of all runs, then each run's per-fold learning curves (copied into ``curves/``)."""
    try:
        scores = {score.name: score for score in score_models(experiment, runs)}
    except FerKaggleError as error:
        logger.warning("OOF accuracy left out of the report: %s", error)
        scores = {}

    rows, figures = [], []
    for run in runs:
        folds = finished_folds(experiment.runs_dir, run.name)
        rows.append(_score_row(run, folds, scores.get(run.name), experiment))
        for fold in folds:
            source = RunPaths(experiment.runs_dir, run.name, fold).curves
            if not source.is_file():
                continue
            copy = reports_dir / "curves" / run.name / f"fold{fold}.png"
            atomic_write_bytes(copy, source.read_bytes())
            figures.append(_figure(reports_dir, copy, f"{run.name} fold {fold}: learning curves"))

    if not any(finished_folds(experiment.runs_dir, run.name) for run in runs):
        return _missing(f"No finished fold under {experiment.runs_dir}: run 'make train-all' first.")
    table = (
        "<table><tr><th>run</th><th>arch</th><th>finished folds (indices)</th><th>OOF accuracy</th>"
        f"<th>mean fold valid acc</th></tr>{''.join(rows)}</table>"
    )
    return f'{table}<div class="gallery">{"".join(figures)}</div>'


def _score_row(run: RunConfig, folds: list[int], score: ModelScore | None, experiment: ExperimentConfig) -> str:
    accuracies = [
        json.loads(RunPaths(experiment.runs_dir, run.name, fold).metrics.read_text(encoding="utf-8"))["valid_acc"]
        for fold in folds
    ]
    mean = f"{sum(accuracies) / len(accuracies):.4f}" if accuracies else "-"
    oof = f"{score.oof_accuracy:.4f} ({score.n_oof} faces)" if score is not None else "-"
    fold_text = ", ".join(map(str, folds)) or "none"
    return (
        f"<tr><td>{html.escape(run.name)}</td><td>{html.escape(run.model.arch)}</td><td>{fold_text}</td>"
        f"<td>{oof}</td><td>{mean}</td></tr>"
    )


def _compare_section(reports_dir: Path) -> str:
    table, chart = reports_dir / "compare.md", reports_dir / "compare.png"
    if not table.is_file() and not chart.is_file():
        return _missing("No comparison yet: run 'make compare'.")
    parts = []
    if table.is_file():
        parts.append(_markdown(table.read_text(encoding="utf-8")))
    if chart.is_file():
        parts.append(_figure(reports_dir, chart, "Local leaderboard of models and blends"))
    return "\n".join(parts)


def _analysis_section(runs: list[RunConfig], reports_dir: Path) -> str:
    """Return the figures of each run of the experiment that ``fer-kaggle analyze`` has written."""
    parts = []
    for run in runs:
        folder = reports_dir / "analysis" / run.name
        summary_path = folder / FIGURE_FILES["summary"]
        if not summary_path.is_file():
            continue
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        public = summary.get("public_accuracy")
        public_text = f", public accuracy {public:.4f}" if public is not None else ""
        parts.append(f"<h3>{html.escape(run.name)}</h3>")
        parts.append(
            f"<p>{html.escape(summary['arch'])}, fold {summary['fold']} (valid acc {summary['fold_valid_acc']:.4f}); "
            f"OOF accuracy {summary['oof_accuracy']:.4f} over folds {html.escape(', '.join(map(str, summary['oof_folds'])))}"
            f"{public_text}. Filters: <code>{html.escape(str(summary.get('filter_layer')))}</code>, activations: "
            f"<code>{html.escape(str(summary.get('activation_layer')))}</code> for face {summary.get('face_id')}.</p>"
        )
        pairs = folder / FIGURE_FILES["confused_pairs"]
        if pairs.is_file():
            parts.append(_markdown(pairs.read_text(encoding="utf-8")))
        written = summary.get("files", {})
        for key, caption in ANALYSIS_FIGURES:
            path = folder / FIGURE_FILES[key]
            if key in written and path.is_file():
                parts.append(_figure(reports_dir, path, f"{run.name}: {caption}"))
        for key, reason in summary.get("skipped", {}).items():
            parts.append(_missing(f"{key} left out: {reason}"))
    if not parts:
        return _missing("No analysis yet: run 'make analyze'.")
    return "\n".join(parts)
