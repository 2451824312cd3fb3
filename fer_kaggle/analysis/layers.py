"""Find a model's layers by name and read what a layer outputs for a batch of faces."""

from collections.abc import Callable

import torch
from torch import nn

from fer_kaggle.errors import ConfigError

__all__ = [
    "capture_output",
    "conv_layer_names",
    "default_filter_layer",
    "gradcam_layer_name",
    "module_names",
    "resolve_layer",
]


class _LayerReached(Exception):
    """Raised by a forward hook to skip the layers after the one being read."""


def module_names(model: nn.Module) -> list[str]:
    """Return the names of all submodules, in ``named_modules`` order (the model itself excluded)."""
    return [name for name, _ in model.named_modules() if name]


def conv_layer_names(model: nn.Module) -> list[str]:
    """Return the names of the model's ``Conv2d`` modules, in ``named_modules`` order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def resolve_layer(model: nn.Module, name: str, *, conv_only: bool, model_name: str = "model") -> nn.Module:
    """Return the submodule called ``name``.

    Args:
        model: the model to search.
        name: a name from ``model.named_modules()``, such as ``layer1.0.conv2``.
        conv_only: accept ``Conv2d`` modules only (filter visualisation needs filters).
        model_name: the run name, for the error message.

    Raises:
        ConfigError: no such module, or not a ``Conv2d`` when ``conv_only``; the message
            lists the valid names.
    """
    valid = conv_layer_names(model) if conv_only else module_names(model)
    kind = "Conv2d layer" if conv_only else "layer"
    if not valid:
        raise ConfigError(f"--layer: model {model_name!r} has no {kind}; analyse a convolutional model instead")
    if name not in valid:
        raise ConfigError(f"--layer: {model_name!r} has no {kind} named {name!r}; valid names: {', '.join(valid)}")
    return model.get_submodule(name)


def default_filter_layer(model: nn.Module, model_name: str = "model") -> str:
    """Return the name of the second ``Conv2d`` (the first when there is only one).

    The first convolution of a 48x48 network has a 3x3-pixel receptive field, too small
    for more than edges. The second one combines edges into small patterns.

    Raises:
        ConfigError: the model has no ``Conv2d`` (the fully connected baseline).
    """
    names = conv_layer_names(model)
    if not names:
        raise ConfigError(f"model {model_name!r} has no Conv2d layer, so it has no filters to visualise")
    return names[1] if len(names) > 1 else names[0]


def gradcam_layer_name(model: nn.Module) -> str | None:
    """Return the module whose output Grad-CAM explains: the last convolutional block.

    timm models list their feature blocks in ``feature_info``; the last entry is the
    deepest block before global pooling. Other models fall back to their last ``Conv2d``.
    Returns None for a model without convolutions.
    """
    feature_info = getattr(model, "feature_info", None) or []
    names = set(module_names(model))
    for info in reversed(feature_info):
        if isinstance(info, dict) and info.get("module") in names:
            return info["module"]
    convs = conv_layer_names(model)
    return convs[-1] if convs else None


def capture_output(
    model: nn.Module,
    layer: nn.Module,
    inputs: torch.Tensor,
    *,
    stop: bool = True,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run ``model`` on ``inputs`` and return the output of ``layer``.

    The forward hook is removed before returning, also after an error. The returned
    tensor keeps its autograd graph (so gradient ascent can use it) but is cloned, so an
    in-place activation after the layer cannot change it.

    Args:
        model: the model, in the mode the caller chose.
        layer: a submodule of ``model``.
        inputs: the model's input batch.
        stop: skip the layers after ``layer``, which saves their compute.
        transform: applied to the layer output inside the hook.

    Raises:
        RuntimeError: the forward pass never called ``layer``.
    """
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        value = output if transform is None else transform(output)
        captured.append(value.clone())
        if stop:
            raise _LayerReached

    handle = layer.register_forward_hook(hook)
    try:
        model(inputs)
    except _LayerReached:
        pass
    finally:
        handle.remove()

    if not captured:
        raise RuntimeError(f"the forward pass did not call layer {type(layer).__name__}; it is not part of the model's forward")
    return captured[0]
