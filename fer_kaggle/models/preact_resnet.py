"""Pre-activation ResNet for 48x48 grayscale input, built from timm's ResNetV2.

Each block is BN-ReLU-conv3x3-BN-ReLU-conv3x3 with an identity (or 1x1 projection)
shortcut, and the residual branch passes through timm's DropPath, so ``drop_path_rate``
gives stochastic depth. Pre-activation keeps the shortcut path free of nonlinearities,
which makes deeper stacks train as easily as the seed model.
"""

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from timm.layers import BatchNormAct2d, create_conv2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnetv2 import ResNetV2
from torch import nn

from fer_kaggle.errors import ConfigError
from fer_kaggle.models.checks import check_depths, check_positive_int, check_rate
from fer_kaggle.models.defaults import fer_cfg
from fer_kaggle.models.stem import rescale_feature_info

__all__ = ["build_preact_resnet48"]


def build_preact_resnet48(
    *,
    width: int,
    depths: Sequence[int],
    in_chans: int = 1,
    num_classes: int = 7,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    model_name: str = "preact_resnet48",
    **resnetv2_kwargs: Any,
) -> ResNetV2:
    """Build a timm ``ResNetV2`` of pre-activation basic blocks with a 3x3 stride-1 stem.

    Stage ``i`` has ``width * 2**i`` channels and ``depths[i]`` blocks, and every stage after
    the first halves the resolution.

    Args:
        width: Channels of the stem and the first stage, a multiple of 8 because ResNetV2
            rounds stage widths to multiples of 8.
        depths: Blocks per stage.
        in_chans: Input channels.
        num_classes: Classifier outputs.
        drop_rate: Dropout probability before the classifier.
        drop_path_rate: Stochastic depth rate of the last block. timm ramps the rate linearly
            from 0 at the first block.
        model_name: Name used in error messages.
        **resnetv2_kwargs: Passed to ``timm.models.resnetv2.ResNetV2`` (e.g. ``act_layer``).

    Raises:
        ConfigError: an argument is out of range, or ``width`` is not a multiple of 8.
    """
    width = check_positive_int(width, "width", model_name)
    depths = check_depths(depths, model_name)
    drop_rate = check_rate(drop_rate, "drop_rate", model_name)
    drop_path_rate = check_rate(drop_path_rate, "drop_path_rate", model_name)
    if width % 8:
        raise ConfigError(f"model '{model_name}': invalid width {width}; expected a multiple of 8")

    model = ResNetV2(
        layers=list(depths),
        channels=tuple(width * 2**stage for stage in range(len(depths))),
        num_classes=num_classes,
        in_chans=in_chans,
        stem_chs=width,
        basic=True,
        bottle_ratio=1.0,
        conv_layer=create_conv2d,
        norm_layer=BatchNormAct2d,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        **resnetv2_kwargs,
    )

    # Pre-activation stems end on the convolution: the first block normalises its input.
    stem_conv = create_conv2d(in_chans, width, kernel_size=3, stride=1)
    nn.init.kaiming_normal_(stem_conv.weight, mode="fan_out", nonlinearity="relu")
    model.stem = nn.Sequential(OrderedDict(conv=stem_conv))
    model.stem_feat_idx = 0
    rescale_feature_info(model)
    return model


default_cfgs = generate_default_cfgs({"preact_resnet": fer_cfg(first_conv="stem.conv", classifier="head.fc")})


@register_model
def preact_resnet(
    pretrained: bool = False,
    *,
    width: int = 32,
    depths: Sequence[int] = (2, 3, 3, 1),
    drop_path_rate: float = 0.1,
    **kwargs: Any,
) -> ResNetV2:
    """Pre-activation ResNet, wider and deeper than the seed: 32 to 256 channels, 2.0M parameters."""
    return build_model_with_cfg(
        build_preact_resnet48,
        "preact_resnet",
        pretrained,
        feature_cfg={"flatten_sequential": True},
        width=width,
        depths=depths,
        drop_path_rate=drop_path_rate,
        model_name="preact_resnet",
        **kwargs,
    )
