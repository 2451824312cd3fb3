"""Adapt the stride-4 stem of timm's ResNet families to 48x48 input.

ImageNet stems downsample 4x (a stride-2 convolution, then a stride-2 max-pool), which
leaves a 48x48 face with a 2x2 map after the last stage. Setting the stem convolution
to stride 1 and removing the pool keeps the usual 6x6 final map of a 48x48 network.
"""

import logging

from timm.models.resnet import ResNet
from timm.models.resnetv2 import ResNetV2
from torch import nn

__all__ = ["adapt_stem_for_small_input", "rescale_feature_info"]

logger = logging.getLogger(__name__)

#: Factor by which the adaptation lowers the network stride: the stem's stride 4 (conv and pool) becomes 1.
STEM_REDUCTION_REMOVED = 4


def rescale_feature_info(model: nn.Module) -> None:
    """Divide the ``reduction`` entries of ``model.feature_info`` by the stride the stem no longer applies.

    timm's feature extraction (``features_only``) reads these entries, so they must match the
    adapted network. The stem's own entry, stride 2 before the change, becomes 1.
    """
    for info in getattr(model, "feature_info", []):
        info["reduction"] = max(1, info["reduction"] // STEM_REDUCTION_REMOVED)


def _first_strided_conv(module: nn.Module) -> nn.Conv2d | None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d) and layer.stride != (1, 1):
            return layer
    return None


def adapt_stem_for_small_input(model: nn.Module, name: str) -> bool:
    """Set the stem convolution of a timm ResNet or ResNetV2 to stride 1 and drop the stem max-pool, in place.

    The kernel size and weights stay, so a 7x7 stem stays 7x7. Stems whose pool is not a
    plain max-pool (anti-aliased or convolutional pools) are left unchanged.

    Args:
        model: A model built by ``timm.create_model``.
        name: Model name, for the log message.

    Returns:
        Whether the model was changed. Other model families return False and keep their stem.
    """
    if isinstance(model, ResNet):
        stem_conv = _first_strided_conv(model.conv1)
        stem_pool_owner, stem_pool_name = model, "maxpool"
    elif isinstance(model, ResNetV2):
        stem_conv = _first_strided_conv(model.stem)
        stem_pool_owner, stem_pool_name = model.stem, "pool"
    else:
        logger.info("%s: not a timm ResNet or ResNetV2, so its stem keeps its stride", name)
        return False

    stem_pool = getattr(stem_pool_owner, stem_pool_name, None)
    if stem_conv is None or not isinstance(stem_pool, nn.MaxPool2d):
        logger.info("%s: stem has no stride-2 convolution followed by a max-pool, so it stays as built", name)
        return False

    stem_conv.stride = (1, 1)
    setattr(stem_pool_owner, stem_pool_name, nn.Identity())
    if isinstance(model, ResNetV2) and hasattr(model.stem, "pad"):
        # BiT's "fixed" stem pads before its max-pool, and that padding belongs to the pool.
        model.stem.pad = nn.Identity()
    rescale_feature_info(model)

    logger.info("%s: stem convolution set to stride 1 and stem max-pool removed for 48x48 input", name)
    return True
