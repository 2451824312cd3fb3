"""Feature maps that one layer outputs for one face."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_kaggle.analysis.layers import capture_output, module_names, resolve_layer
from fer_kaggle.analysis.restore import evaluation_state
from fer_kaggle.errors import ConfigError
from fer_kaggle.predict import model_normalisation, normalise_batch

__all__ = ["ActivationInfo"]


@dataclass
class ActivationInfo:
    """The output maps of ``layer`` for the face ``face_id``."""

    layer: str
    face_id: int
    image: np.ndarray  # uint8 (48, 48)
    maps: np.ndarray  # float (channels, height, width)


def _get_activation_info(model: nn.Module, image: np.ndarray, layer_name: str, face_id: int = -1) -> ActivationInfo:
    """Run one face through the model and keep the output of ``layer_name``.

    Raises:
        ConfigError: no module of that name, or its output is not a stack of 2-D maps
            (a linear layer); the message lists the valid names.
    """
    layer = resolve_layer(model, layer_name, conv_only=False)
    mean, std = model_normalisation(model)
    device = next(model.parameters()).device
    inputs = normalise_batch(np.asarray(image)[None], mean, std).to(device)

    with evaluation_state(model), torch.no_grad():
        output = capture_output(model, layer, inputs)

    if output.ndim != 4:
        spatial = [name for name in module_names(model) if _outputs_maps(model, name, inputs)]
        raise ConfigError(
            f"--layer: {layer_name!r} outputs shape {tuple(output.shape)}, not feature maps (channels, height, width); "
            f"layers with feature maps: {', '.join(spatial) or 'none'}"
        )
    return ActivationInfo(layer_name, int(face_id), np.asarray(image), output[0].float().cpu().numpy())


def _outputs_maps(model: nn.Module, name: str, inputs: torch.Tensor) -> bool:
    with evaluation_state(model), torch.no_grad():
        return capture_output(model, model.get_submodule(name), inputs).ndim == 4


def _plot_activations(info: ActivationInfo, path: Path, title: str = "") -> None:
    """Draw the face, then each channel's map in a grid, each on its own colour scale."""
    import matplotlib.pyplot as plt

    from fer_kaggle.plots import save_figure

    n_maps = len(info.maps) + 1
    n_cols = int(np.ceil(np.sqrt(n_maps)))
    n_rows = int(np.ceil(n_maps / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(1.5 * n_cols, 1.6 * n_rows), squeeze=False, layout="constrained")
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index == 0:
            axis.imshow(info.image, cmap="gray", vmin=0, vmax=255)
            axis.set_title(f"face {info.face_id}", fontsize=7)
        elif index <= len(info.maps):
            axis.imshow(info.maps[index - 1], cmap="viridis")
            axis.set_title(f"channel {index - 1}", fontsize=6)
        else:
            axis.set_axis_off()

    heading = f"{info.layer}: output maps {tuple(info.maps.shape)} for face {info.face_id}"
    figure.suptitle(f"{title}\n{heading}" if title else heading, fontsize=9)
    save_figure(figure, path)
