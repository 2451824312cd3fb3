"""Saliency maps with Captum: vanilla gradient, SmoothGrad and Grad-CAM on the last convolutional block."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from torch import nn

from fer_kaggle.analysis.layers import gradcam_layer_name, resolve_layer
from fer_kaggle.analysis.restore import evaluation_state
from fer_kaggle.constants import CLASS_NAMES, NUM_CLASSES
from fer_kaggle.predict import model_normalisation, normalise_batch

__all__ = ["SaliencyInfo", "pick_faces"]

#: SmoothGrad noise as a share of the pixel range; Smilkov et al. (2017) found 10-20% works best.
SMOOTHGRAD_NOISE = 0.15


@dataclass
class SaliencyInfo:
    """Attribution maps of faces for the class the model predicts on each face."""

    images: np.ndarray  # uint8 (N, 48, 48)
    ids: np.ndarray  # int64 (N,)
    labels: np.ndarray  # int64 (N,)
    predictions: np.ndarray  # int64 (N,): argmax of the logits on the face alone, without flip TTA
    vanilla: np.ndarray  # float (N, 48, 48): |d logit / d pixel|
    smoothgrad: np.ndarray  # float (N, 48, 48): vanilla gradient averaged over noisy copies
    gradcam: np.ndarray | None  # float (N, 48, 48), upsampled; None for a model without convolutions
    gradcam_layer: str | None


def pick_faces(labels: np.ndarray, predictions: np.ndarray, per_class: int = 2, seed: int = 0) -> np.ndarray:
    """Return indices of up to ``per_class`` faces per class, mixing correct and wrong predictions.

    Each class gets ``ceil(per_class / 2)`` correctly predicted faces and the rest wrong
    ones; when one kind runs short the other fills in. Classes appear in label order.
    """
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in range(NUM_CLASSES):
        of_class = labels == label
        correct = rng.permutation(np.flatnonzero(of_class & (predictions == label))).tolist()
        wrong = rng.permutation(np.flatnonzero(of_class & (predictions != label))).tolist()
        n_correct = min(len(correct), max(per_class - len(wrong), (per_class + 1) // 2))
        picked = correct[:n_correct] + wrong[: per_class - n_correct]
        chosen.extend(picked)
    return np.array(chosen, dtype=np.int64)


def _get_saliency_info(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray | None = None,
    *,
    smoothgrad_samples: int = 25,
    gradcam_layer: str | None = None,
    seed: int = 0,
) -> SaliencyInfo:
    """Compute the three attribution maps of each face for the class the model predicts.

    Attributions explain the prediction, right or wrong, so that a wrong one shows what
    misled the model. The model is evaluated in eval mode with frozen parameters and put
    back as it was afterwards; Captum removes the hooks it adds.

    Args:
        model: a model taking normalised (N, 1, 48, 48) input.
        images: uint8 faces (N, 48, 48).
        labels: true class per face.
        ids: face ids, kept for the figure; 0..N-1 when omitted.
        smoothgrad_samples: noisy copies averaged per face.
        gradcam_layer: module for Grad-CAM; the last convolutional block by default.
        seed: seed of the SmoothGrad noise.

    Raises:
        ConfigError: ``gradcam_layer`` is not a module of the model.
    """
    if smoothgrad_samples < 1:
        raise ValueError(f"smoothgrad_samples must be >= 1, got {smoothgrad_samples}")
    mean, std = model_normalisation(model)
    device = next(model.parameters()).device
    inputs = normalise_batch(images, mean, std).to(device)
    layer_name = gradcam_layer or gradcam_layer_name(model)
    layer = resolve_layer(model, layer_name, conv_only=False) if layer_name is not None else None

    with evaluation_state(model, freeze=True):
        with torch.no_grad():
            predictions = model(inputs).argmax(dim=1)

        vanilla = Saliency(model).attribute(inputs.clone().requires_grad_(), target=predictions, abs=True)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            smoothgrad = NoiseTunnel(Saliency(model)).attribute(
                inputs.clone().requires_grad_(),
                nt_type="smoothgrad",
                nt_samples=smoothgrad_samples,
                stdevs=SMOOTHGRAD_NOISE / std,
                target=predictions,
                abs=True,
            )

        gradcam = None
        if layer is not None:
            coarse = LayerGradCam(model, layer).attribute(
                inputs.clone().requires_grad_(), target=predictions, relu_attributions=True
            )
            gradcam = LayerAttribution.interpolate(coarse.detach(), tuple(images.shape[1:]), interpolate_mode="bilinear")
            gradcam = gradcam.sum(dim=1).cpu().numpy()

    return SaliencyInfo(
        images=np.asarray(images),
        ids=np.arange(len(images)) if ids is None else np.asarray(ids),
        labels=np.asarray(labels, dtype=np.int64),
        predictions=predictions.cpu().numpy().astype(np.int64),
        vanilla=vanilla.detach().sum(dim=1).cpu().numpy(),
        smoothgrad=smoothgrad.detach().sum(dim=1).cpu().numpy(),
        gradcam=gradcam,
        gradcam_layer=layer_name if layer is not None else None,
    )


def _scaled(saliency: np.ndarray) -> np.ndarray:
    """Scale a map to 0..1 by its 99th percentile, so one extreme pixel does not wash it out."""
    top = float(np.percentile(saliency, 99))
    if top <= 0:
        return np.zeros_like(saliency, dtype=np.float64)
    return np.clip(saliency / top, 0.0, 1.0)


def _plot_saliency(info: SaliencyInfo, path: Path, title: str = "") -> None:
    """Draw one row per face: the face, then each map overlaid on it; a wrong prediction is marked in red."""
    import matplotlib.pyplot as plt

    from fer_kaggle.plots import save_figure

    maps = [("vanilla gradient", info.vanilla), ("SmoothGrad", info.smoothgrad)]
    if info.gradcam is not None:
        maps.append((f"Grad-CAM ({info.gradcam_layer})", info.gradcam))
    n_rows, n_cols = len(info.images), 1 + len(maps)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.9 * n_rows), squeeze=False, layout="constrained")

    for row in range(n_rows):
        face = info.images[row]
        correct = info.labels[row] == info.predictions[row]
        verdict = "correct" if correct else "WRONG"
        face_axis = axes[row, 0]
        face_axis.imshow(face, cmap="gray", vmin=0, vmax=255)
        face_axis.set_title(
            f"id {info.ids[row]}: {CLASS_NAMES[info.labels[row]]}\npred {CLASS_NAMES[info.predictions[row]]} ({verdict})",
            fontsize=7,
            color="black" if correct else "red",
        )
        for spine in face_axis.spines.values():
            spine.set_edgecolor("green" if correct else "red")
            spine.set_linewidth(3)
        for column, (name, values) in enumerate(maps, start=1):
            axis = axes[row, column]
            axis.imshow(face, cmap="gray", vmin=0, vmax=255)
            axis.imshow(_scaled(values[row]), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if row == 0:
                axis.set_title(name, fontsize=8)
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])

    if title:
        figure.suptitle(title, fontsize=9)
    save_figure(figure, path)
