"""Create models by name: this project's registered models or any timm model, adapted to 48x48 grayscale."""

import logging
import re
from typing import Any

import timm
from timm.models import model_entrypoint
from torch import nn

from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.errors import ConfigError
from fer_kaggle.models.defaults import FER_MEAN, FER_STD
from fer_kaggle.models.stem import adapt_stem_for_small_input

__all__ = ["check_model_name", "count_parameters", "create_model", "list_models"]

logger = logging.getLogger(__name__)

# CPython's wording for a keyword argument that a constructor does not accept or gets twice.
_BAD_KWARG_PATTERN = re.compile(r"(unexpected|multiple values for) keyword argument '(\w+)'")


def list_models() -> list[str]:
    """Return the sorted names that this package registers in timm's registry."""
    package_prefix = __name__.rpartition(".")[0] + "."
    return sorted(name for name in timm.list_models() if model_entrypoint(name).__module__.startswith(package_prefix))


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters (those with ``requires_grad``)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def _grayscale_cfg_overlay(num_classes: int, in_chans: int) -> dict[str, Any]:
    """Return a pretrained-cfg overlay with FER's input size, mean and std.

    timm resolves data configs from the pretrained cfg, and models with a fixed input size
    (ViT and similar) also take their ``img_size`` from it.
    """
    overlay: dict[str, Any] = {
        "input_size": (in_chans, IMAGE_SIZE, IMAGE_SIZE),
        "test_input_size": None,
        "crop_pct": 1.0,
        "mean": FER_MEAN * in_chans,
        "std": FER_STD * in_chans,
        "num_classes": num_classes,
    }
    if num_classes == NUM_CLASSES:
        overlay["label_names"] = CLASS_NAMES
    return overlay


def _build(name: str, **kwargs: Any) -> nn.Module:
    """Call ``timm.create_model`` and turn a rejected keyword argument into a ConfigError."""
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as error:
        bad_kwarg = _BAD_KWARG_PATTERN.search(str(error))
        if bad_kwarg is None:
            raise
        problem, key = bad_kwarg.groups()
        reason = "is not an argument of this model" if problem == "unexpected" else "is already set by this model"
        raise ConfigError(
            f"model '{name}': invalid keyword argument '{key}' ({reason}); remove it or check its spelling"
        ) from None


def check_model_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is one of this package's models or a timm model.

    Raises:
        ConfigError: an unknown name; the message lists this package's models.
    """
    own_names = list_models()
    if name not in own_names and not timm.is_model(name):
        raise ConfigError(f"unknown model '{name}'; choose one of: {', '.join(own_names)}, or any timm model name")


def create_model(name: str, num_classes: int = NUM_CLASSES, in_chans: int = 1, **kwargs: Any) -> nn.Module:
    """Create a randomly initialised model for 48x48 input from this package or from timm.

    A name from :func:`list_models` gets its own 48x48 design. Any other timm name gets
    ``in_chans`` input channels and the FER mean/std and input size in its pretrained cfg.
    A timm ResNet or ResNetV2 also gets its stem set to stride 1 without the max-pool (see
    :func:`fer_kaggle.models.stem.adapt_stem_for_small_input`). Other families keep their
    stride, so their final feature map on a 48x48 input is small, e.g. 2x2 at stride 32.
    NOTE: with ``features_only=True`` no timm stem is adapted, because timm wraps the
    network in a feature extractor before this function receives it.

    Args:
        name: Model name, e.g. ``"resnet_seed"`` or ``"resnet10t"``.
        num_classes: Classifier outputs.
        in_chans: Input channels.
        **kwargs: Model keyword arguments, e.g. ``width``, ``depths``, ``drop_rate`` or
            ``drop_path_rate``. Values of None are dropped, so the model default applies.

    Raises:
        ConfigError: ``name`` is neither this package's nor timm's, a keyword argument is
            not accepted by the model, a value is invalid, or ``pretrained`` is set, because
            weights are never downloaded.
    """
    if kwargs.pop("pretrained", False):
        raise ConfigError(
            f"model '{name}': pretrained weights are not supported; remove 'pretrained' to train from scratch"
        )

    if name in list_models():
        return _build(name, num_classes=num_classes, in_chans=in_chans, **kwargs)

    check_model_name(name)

    model = _build(
        name,
        num_classes=num_classes,
        in_chans=in_chans,
        pretrained_cfg_overlay=_grayscale_cfg_overlay(num_classes, in_chans),
        **kwargs,
    )
    if kwargs.get("features_only"):
        # timm has already wrapped the network in a feature extractor, whose stem cannot be adapted.
        logger.warning("%s: features_only model keeps its stride-2 stem, so its maps are 4x smaller", name)
    else:
        adapt_stem_for_small_input(model, name)
    return model
