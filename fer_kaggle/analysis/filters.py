"""Filter visualisation by gradient ascent: for each filter, the input that maximises its mean activation."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from fer_kaggle.analysis.layers import capture_output, resolve_layer
from fer_kaggle.analysis.restore import evaluation_state
from fer_kaggle.constants import IMAGE_SIZE
from fer_kaggle.predict import model_normalisation

__all__ = ["FilterInfo"]


@dataclass
class FilterInfo:
    """One optimised image per filter of a layer, and the filter's mean activation before and after."""

    layer: str
    images: np.ndarray  # float32 (filters, 48, 48), pixel scale 0..1
    start_activation: np.ndarray  # float (filters,): on the starting noise
    final_activation: np.ndarray  # float (filters,): on the optimised image


def _get_filter_info(
    model: nn.Module,
    layer_name: str,
    *,
    steps: int = 160,
    lr: float = 0.05,
    jitter: int = 2,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    l2_weight: float = 1e-3,
    noise_std: float = 0.05,
    seed: int = 0,
) -> FilterInfo:
    """Optimise one image per filter of ``layer_name`` to maximise that filter's mean activation.

    All filters are optimised together as one batch (image ``c`` for filter ``c``), which
    is exact because the model runs in eval mode, where BatchNorm does not mix faces.
    Without regularisation the ascent finds high-frequency noise, so each step applies:

    - jitter: the image is rolled by up to ``jitter`` pixels before the forward pass, so
      the pattern must work at several offsets;
    - blur: every ``blur_every`` steps a Gaussian blur of ``blur_sigma`` pixels removes
      the highest frequencies;
    - an L2 penalty of ``l2_weight`` on the distance to mid-grey;
    - a clamp of the pixels to the 0..1 range that real faces have.

    The forward pass stops at the layer. The model's mode, ``requires_grad`` flags and
    hooks are as before when this returns.

    Args:
        model: a model taking normalised (N, 1, 48, 48) input.
        layer_name: a ``Conv2d`` module name from ``model.named_modules()``.
        steps: Adam steps.
        lr: Adam learning rate, on the 0..1 pixel scale.
        jitter: maximum roll in pixels.
        blur_every: blur period in steps; 0 turns blurring off.
        blur_sigma: standard deviation of the blur, in pixels.
        l2_weight: weight of the L2 penalty.
        noise_std: standard deviation of the starting noise around mid-grey.
        seed: seed of the starting noise and the jitter.

    Raises:
        ConfigError: ``layer_name`` is not a ``Conv2d`` of the model.
        ValueError: ``steps`` is below 1.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    layer = resolve_layer(model, layer_name, conv_only=True)
    n_filters = layer.out_channels
    mean, std = model_normalisation(model)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)

    def filter_means(pixels: torch.Tensor) -> torch.Tensor:
        output = capture_output(model, layer, (pixels - mean) / std)
        return output.mean(dim=(2, 3)).diagonal()  # image c, filter c

    start = 0.5 + noise_std * torch.randn(n_filters, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    start = start.clamp(0.0, 1.0).to(device)
    pixels = start.clone().requires_grad_()
    optimizer = torch.optim.Adam([pixels], lr=lr)

    with evaluation_state(model, freeze=True):
        with torch.no_grad():
            start_activation = filter_means(start)

        for step in range(steps):
            dy, dx = (int(shift) for shift in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
            shifted = torch.roll(pixels, shifts=(dy, dx), dims=(2, 3))
            activation = filter_means(shifted)
            loss = -activation.sum() + l2_weight * ((pixels - 0.5) ** 2).sum()

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                if blur_every and (step + 1) % blur_every == 0:
                    pixels.copy_(gaussian_blur(pixels, kernel_size=3, sigma=blur_sigma))
                pixels.clamp_(0.0, 1.0)

        with torch.no_grad():
            final_activation = filter_means(pixels)

    return FilterInfo(
        layer=layer_name,
        images=pixels.detach().squeeze(1).cpu().numpy().astype(np.float32),
        start_activation=start_activation.cpu().numpy().astype(np.float64),
        final_activation=final_activation.cpu().numpy().astype(np.float64),
    )


def _plot_filters(info: FilterInfo, path: Path, title: str = "") -> None:
    """Draw all optimised images in one grid, each titled with its filter index and activation gain."""
    import matplotlib.pyplot as plt

    from fer_kaggle.plots import save_figure

    n_filters = len(info.images)
    n_cols = int(np.ceil(np.sqrt(n_filters)))
    n_rows = int(np.ceil(n_filters / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(1.5 * n_cols, 1.6 * n_rows), squeeze=False, layout="constrained")
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= n_filters:
            axis.set_axis_off()
            continue
        image = info.images[index]
        low, high = float(image.min()), float(image.max())
        axis.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1e-6)
        axis.set_title(f"{index}: {info.start_activation[index]:.2f}->{info.final_activation[index]:.2f}", fontsize=6)

    heading = f"{info.layer}: inputs that maximise each filter's mean activation (noise -> optimised)"
    figure.suptitle(f"{title}\n{heading}" if title else heading, fontsize=9)
    save_figure(figure, path)
