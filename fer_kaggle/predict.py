"""Batched inference on uint8 faces, with flip TTA."""

import numpy as np
import torch
from torch import nn

from fer_kaggle.device import autocast_context

__all__ = ["normalise_batch", "predict_probs", "model_normalisation"]


def model_normalisation(model: nn.Module) -> tuple[float, float]:
    """Return the (mean, std) of the model's default config, on the 0..1 pixel scale."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = cfg.get("mean", (0.5,))
    std = cfg.get("std", (0.25,))
    return float(mean[0]), float(std[0])


def normalise_batch(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """Turn uint8 faces (N, 48, 48) into a float tensor (N, 1, 48, 48) normalised by mean/std.

    Matches :func:`fer_kaggle.augment.build_eval_transform` applied face by face.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return tensor.sub_(mean).div_(std).unsqueeze(1)


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    images: np.ndarray,
    *,
    device: torch.device,
    precision: str = "fp32",
    tta: bool = True,
    batch_size: int = 256,
    channels_last: bool = True,
) -> np.ndarray:
    """Return class probabilities (N, classes) as float32 for uint8 faces (N, 48, 48).

    With ``tta`` the probabilities are the mean over the face and its mirror image. The
    model is put in eval mode and left in it.
    """
    model.eval()
    mean, std = model_normalisation(model)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = normalise_batch(images[start : start + batch_size], mean, std).to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast_context(precision, device):
            probs = model(batch).float().softmax(dim=1)
            if tta:
                probs = (probs + model(torch.flip(batch, dims=[3])).float().softmax(dim=1)) / 2
        outputs.append(probs.cpu())
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outputs).numpy().astype(np.float32)
