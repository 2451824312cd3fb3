"""Write every analysis figure of the chosen model into ``REPORTS_DIR/analysis/<model>/``."""

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from fer_kaggle.analysis.activations import ActivationInfo, _get_activation_info, _plot_activations
from fer_kaggle.analysis.confusion import ConfusionInfo, _get_confusion_info, _plot_confusion, format_confused_pairs
from fer_kaggle.analysis.curves import _get_curve_info, _plot_learning_curves
from fer_kaggle.analysis.filters import FilterInfo, _get_filter_info, _plot_filters
from fer_kaggle.analysis.layers import conv_layer_names, default_filter_layer, resolve_layer
from fer_kaggle.analysis.saliency import SaliencyInfo, _get_saliency_info, _plot_saliency, pick_faces
from fer_kaggle.analysis.select import (
    Selection,
    labels_for,
    load_selected_model,
    oof_frame,
    oof_predictions,
    select_model,
)
from fer_kaggle.atomic import atomic_write_text, staged_directory
from fer_kaggle.data.faceset import FaceSet, load_faceset
from fer_kaggle.errors import DataError
from fer_kaggle.folds import read_folds
from fer_kaggle.runs import RunPaths, load_predictions

__all__ = ["AnalysisResult", "FIGURE_FILES", "analyze"]

logger = logging.getLogger(__name__)

#: File name of each output inside ``analysis/<model>/``.
FIGURE_FILES: dict[str, str] = {
    "confusion_oof": "confusion_oof.png",
    "confusion_public": "confusion_public.png",
    "confused_pairs": "confused_pairs.md",
    "saliency": "saliency.png",
    "filters": "filters.png",
    "activations": "activations.png",
    "learning_curves": "learning_curves.png",
    "summary": "analysis.json",
}


@dataclass
class AnalysisResult:
    """Files written by :func:`analyze`, and the figures it left out with the reason."""

    selection: Selection
    out_dir: Path
    files: dict[str, Path]
    confused_pairs: str
    skipped: dict[str, str] = field(default_factory=dict)


def analyze(
    experiment_path: str | Path = Path("configs/experiment.yaml"),
    *,
    model: str | None = None,
    fold: int | None = None,
    layer: str | None = None,
    face_id: int | None = None,
    reports_dir: Path = Path("reports"),
    faces_per_class: int = 2,
    smoothgrad_samples: int = 25,
    filter_steps: int = 160,
    seed: int = 0,
) -> AnalysisResult:
    """Select a model and fold, compute the analysis figures and write them with a summary.

    The model is the run with the best OOF accuracy over its finished folds, unless
    ``model`` names one. The fold is that run's fold with the best ``valid_acc``, unless
    ``fold`` names one. Saliency faces come from that fold's validation faces, which the model
    never trained on. Everything is computed before the first file is written, and the
    files move into place together, so an error leaves the previous analysis untouched.

    Args:
        experiment_path: experiment config whose runs are analysed.
        model: run name to analyse.
        fold: finished fold of that run whose ``best.pt`` is loaded.
        layer: module for the filter and activation figures; the second ``Conv2d`` by
            default. A module that is not a ``Conv2d`` gets activations only.
        face_id: training-face id for the activation figure; the fold's first
            validation face by default.
        reports_dir: root of the reports; figures go to ``analysis/<model>/`` in it.
        faces_per_class: saliency faces per class.
        smoothgrad_samples: noisy copies per face for SmoothGrad.
        filter_steps: gradient-ascent steps of the filter visualisation.
        seed: seed of face picking, SmoothGrad noise and the gradient-ascent start.

    Raises:
        ConfigError: unknown model, fold or layer name (the message lists the valid ones).
        DataError: no finished run, missing data or folds, or an unknown ``face_id``.
    """
    selection = select_model(experiment_path, model=model, fold=fold)
    run = selection.run
    net = load_selected_model(selection)
    faces = load_faceset(selection.experiment.data)
    train = faces.subset("train")
    skipped: dict[str, str] = {}

    # Check every option before the slow steps, so a typo fails at once.
    if layer is not None:
        resolve_layer(net, layer, conv_only=False, model_name=run.name)
    filter_layer = _filter_layer(net, layer, run.name, skipped)
    activation_layer = layer or filter_layer
    if activation_layer is None:
        skipped["activations"] = f"{run.name} has no Conv2d layer; pass --layer with a layer that outputs feature maps"
    fold_faces = oof_frame(selection)
    face = int(fold_faces["id"].iloc[0]) if face_id is None else int(face_id)
    face_image = _images_of(train, np.array([face]))[0]

    confusions = [_oof_confusion(selection)]
    public = _public_confusion(selection, faces)
    if public is None:
        skipped["confusion_public"] = "no public test labels in the prepared data, or no test predictions"
    else:
        confusions.append(public)

    picked = fold_faces.iloc[pick_faces(fold_faces["label"].to_numpy(), fold_faces["pred"].to_numpy(), faces_per_class, seed)]
    saliency = _get_saliency_info(
        net,
        _images_of(train, picked["id"].to_numpy()),
        picked["label"].to_numpy(),
        picked["id"].to_numpy(),
        smoothgrad_samples=smoothgrad_samples,
        seed=seed,
    )
    if saliency.gradcam is None:
        skipped["gradcam"] = f"{run.name} has no convolutional layer, so Grad-CAM is left out of the saliency figure"

    figures = _Figures(
        confusions=confusions,
        saliency=saliency,
        filters=_get_filter_info(net, filter_layer, steps=filter_steps, seed=seed) if filter_layer else None,
        activations=_get_activation_info(net, face_image, activation_layer, face) if activation_layer else None,
        curves=_curves(selection),
    )
    summary = {
        "model": run.name,
        "arch": run.model.arch,
        "fold": selection.fold,
        "fold_valid_acc": selection.fold_metrics["valid_acc"],
        "oof_accuracy": selection.score.oof_accuracy,
        "oof_folds": selection.score.folds,
        "n_oof": selection.score.n_oof,
        "public_accuracy": public.accuracy if public is not None else None,
        "checkpoint": str(selection.paths.best),
        "gradcam_layer": saliency.gradcam_layer,
        "filter_layer": filter_layer,
        "activation_layer": activation_layer,
        "face_id": face,
        "skipped": skipped,
    }
    out_dir = Path(reports_dir) / "analysis" / run.name
    files, pairs_text = _write_figures(figures, summary, out_dir)

    for key, reason in skipped.items():
        warnings.warn(f"analyze: {key} left out: {reason}", UserWarning, stacklevel=2)
    logger.info("wrote %d analysis files to %s", len(files), out_dir)
    return AnalysisResult(selection, out_dir, files, pairs_text, skipped)


@dataclass
class _Figures:
    """The computed numbers of every figure, ready to draw."""

    confusions: list[ConfusionInfo]
    saliency: SaliencyInfo
    filters: FilterInfo | None
    activations: ActivationInfo | None
    curves: dict[str, dict[int, pd.DataFrame]]


def _curves(selection: Selection) -> dict[str, dict[int, pd.DataFrame]]:
    """Histories of the chosen run's folds and of each DNN baseline run of the experiment."""
    runs_dir = selection.experiment.runs_dir
    curves = {selection.run.name: _get_curve_info(runs_dir, selection.run.name)}
    for other in selection.runs:
        if other.model.arch == "dnn" and other.name != selection.run.name:
            curves[other.name] = _get_curve_info(runs_dir, other.name)
    return curves


def _write_figures(figures: _Figures, summary: dict, out_dir: Path) -> tuple[dict[str, Path], str]:
    """Draw every figure into a staging folder, move them into ``out_dir`` together, and delete stale ones.

    Returns:
        The written files by key of :data:`FIGURE_FILES`, and the confused-pairs text.
    """
    title = f"{summary['model']} fold {summary['fold']} (valid acc {summary['fold_valid_acc']:.4f})"
    pairs_text = f"# Most confused classes: {summary['model']}\n\n" + format_confused_pairs(figures.confusions)
    written: list[str] = []
    with staged_directory(out_dir) as staging:
        for info, key in zip(figures.confusions, ("confusion_oof", "confusion_public")):
            _plot_confusion(info, staging / FIGURE_FILES[key])
            written.append(key)
        atomic_write_text(staging / FIGURE_FILES["confused_pairs"], pairs_text)
        written.append("confused_pairs")

        _plot_saliency(figures.saliency, staging / FIGURE_FILES["saliency"], title=title)
        written.append("saliency")
        if figures.filters is not None:
            _plot_filters(figures.filters, staging / FIGURE_FILES["filters"], title=title)
            written.append("filters")
        if figures.activations is not None:
            _plot_activations(figures.activations, staging / FIGURE_FILES["activations"], title=title)
            written.append("activations")
        _plot_learning_curves(figures.curves, staging / FIGURE_FILES["learning_curves"])
        written.append("learning_curves")

        summary = {**summary, "files": {key: FIGURE_FILES[key] for key in written}}
        atomic_write_text(staging / FIGURE_FILES["summary"], json.dumps(summary, indent=2) + "\n")
        written.append("summary")

    for key, name in FIGURE_FILES.items():
        if key not in written:  # written by an earlier analysis of this run, with other options
            (out_dir / name).unlink(missing_ok=True)
    return {key: out_dir / FIGURE_FILES[key] for key in written}, pairs_text


def _filter_layer(net: nn.Module, layer: str | None, model_name: str, skipped: dict[str, str]) -> str | None:
    """Return the Conv2d to visualise, or None (with the reason in ``skipped``) when there is none."""
    convs = conv_layer_names(net)
    if layer is not None and layer not in convs:
        skipped["filters"] = f"--layer {layer!r} is not a Conv2d; Conv2d layers: {', '.join(convs) or 'none'}"
        return None
    if layer is not None:
        return layer
    if not convs:
        skipped["filters"] = f"{model_name} has no Conv2d layer"
        return None
    return default_filter_layer(net, model_name)


def _images_of(train: FaceSet, ids: np.ndarray) -> np.ndarray:
    """Return the training faces with the given ids, in that order.

    Raises:
        DataError: an id is not a training face.
    """
    row_of = {int(face_id): row for row, face_id in enumerate(train.ids)}
    missing = [int(face_id) for face_id in ids if int(face_id) not in row_of]
    if missing:
        raise DataError(
            f"--face-id: {missing[0]} is not a training-face id; ids run from {int(train.ids.min())} to {int(train.ids.max())}"
        )
    return train.images[[row_of[int(face_id)] for face_id in ids]]


def _oof_confusion(selection: Selection) -> ConfusionInfo:
    """Confusion of the pooled OOF predictions over all finished folds of the chosen run."""
    folds, _ = read_folds(selection.experiment.folds)
    label_of = dict(zip(folds["id"].tolist(), folds["emotion"].tolist()))
    ids, probs = oof_predictions(selection.experiment.runs_dir, selection.run.name, selection.score.folds)
    labels = labels_for(ids, label_of, source=f"{selection.run.name} OOF")
    folds_text = ", ".join(map(str, selection.score.folds))
    return _get_confusion_info(labels, probs.argmax(axis=1), title=f"OOF (folds {folds_text})")


def _public_confusion(selection: Selection, faces: FaceSet) -> ConfusionInfo | None:
    """Confusion of the fold-averaged test predictions on the labelled public faces, or None."""
    public = faces.subset("public")
    known = public.labels >= 0
    if not known.any():
        return None

    test_ids, total = None, None
    for fold in selection.score.folds:
        ids, probs = load_predictions(RunPaths(selection.experiment.runs_dir, selection.run.name, fold).test)
        if test_ids is None:
            test_ids, total = ids, probs.copy()
        elif not np.array_equal(ids, test_ids):
            raise DataError(f"{selection.run.name} fold {fold}: test.npy lists other faces than fold {selection.score.folds[0]}; train the run again")
        else:
            total += probs
    if test_ids is None or len(test_ids) == 0:
        return None

    row_of = {int(face_id): row for row, face_id in enumerate(test_ids)}
    keep = [index for index, face_id in enumerate(public.ids[known]) if int(face_id) in row_of]
    if not keep:
        return None
    labels = public.labels[known][keep]
    rows = [row_of[int(face_id)] for face_id in public.ids[known][keep]]
    predictions = total[rows].argmax(axis=1)
    n_folds = len(selection.score.folds)
    return _get_confusion_info(labels, predictions, title=f"public test, mean of {n_folds} fold{'s' if n_folds > 1 else ''}")
