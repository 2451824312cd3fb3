"""timm's ResNet with BasicBlock, adapted to 48x48 grayscale input (3x3 stem, no max-pool)."""

from collections.abc import Sequence
from typing import Any

from timm.layers import create_conv2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from fer_kaggle.errors import ConfigError
from fer_kaggle.models.checks import check_depths, check_positive_int, check_rate
from fer_kaggle.models.defaults import fer_cfg

__all__ = ["build_resnet48", "create_resnet48"]

#: timm 1.0's ResNet.forward_features calls layer1 to layer4 by name, so a network with
#: fewer stages gets identities in their place, and more stages would never run.
MAX_STAGES = 4


def build_resnet48(
    *,
    width: int,
    depths: Sequence[int],
    in_chans: int = 1,
    num_classes: int = 7,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    stem_stride: int = 1,
    model_name: str = "resnet48",
    **resnet_kwargs: Any,
) -> ResNet:
    """Build a timm ``ResNet`` of BasicBlocks with a single 3x3 stem convolution and no max-pool.

    Stage ``i`` has ``width * 2**i`` channels and ``depths[i]`` blocks. Every stage after the
    first halves the resolution, so four stages end on a 6x6 map with a stride-1 stem and
    on a 3x3 map with a stride-2 stem.

    Args:
        width: Channels of the stem and the first stage. Must be even, because the ResNet is
            built with a deep stem of ``2 * stem_width`` output channels.
        depths: Blocks per stage, for 1 to 4 stages and at least 2 blocks in total. Each block
            has two 3x3 convolutions and a shortcut.
        in_chans: Input channels.
        num_classes: Classifier outputs.
        drop_rate: Dropout probability before the classifier.
        drop_path_rate: Stochastic depth rate of the last block. timm ramps the rate linearly
            from 0 at the first block.
        stem_stride: Stride of the stem convolution, 1 or 2. Stride 2 runs the first stage
            at 24x24, which cuts the convolution work of a training step about 4x at equal
            widths.
        model_name: Name used in error messages.
        **resnet_kwargs: Passed to ``timm.models.resnet.ResNet`` (e.g. ``zero_init_last``, ``act_layer``).

    Raises:
        ConfigError: an argument is out of range, ``width`` is odd, or ``depths`` has more
            than 4 stages or a single block.
    """
    width = check_positive_int(width, "width", model_name)
    depths = check_depths(depths, model_name)
    drop_rate = check_rate(drop_rate, "drop_rate", model_name)
    drop_path_rate = check_rate(drop_path_rate, "drop_path_rate", model_name)
    if stem_stride not in (1, 2):
        raise ConfigError(f"model '{model_name}': invalid stem_stride {stem_stride!r}; expected 1 or 2")
    if width % 2:
        raise ConfigError(f"model '{model_name}': invalid width {width}; expected an even number")
    if len(depths) > MAX_STAGES or sum(depths) < 2:
        # timm 1.0's stochastic depth ramp divides by (number of blocks - 1).
        raise ConfigError(
            f"model '{model_name}': invalid depths {list(depths)}; "
            f"expected 1 to {MAX_STAGES} stages with at least 2 blocks in total, e.g. [2, 2, 2, 2]"
        )

    # timm 1.0's ResNet fixes the stem output at 64 channels unless the stem is "deep", whose
    # output is 2 * stem_width. The deep stem sizes the first stage; it is replaced below.
    model = ResNet(
        block=BasicBlock,
        layers=depths,
        channels=tuple(width * 2**stage for stage in range(len(depths))),
        in_chans=in_chans,
        num_classes=num_classes,
        stem_type="deep",
        stem_width=width // 2,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        **resnet_kwargs,
    )

    model.conv1 = create_conv2d(in_chans, width, kernel_size=3, stride=stem_stride)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    for stage in range(len(depths) + 1, MAX_STAGES + 1):
        setattr(model, f"layer{stage}", nn.Identity())
    # timm's features_only extraction reads these strides: the stem's, then each stage's.
    for index, info in enumerate(model.feature_info):
        info["reduction"] = stem_stride * 2 ** max(0, index - 1)
    return model


def create_resnet48(variant: str, pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Build a registered 48x48 ResNet variant through timm, which attaches its default cfg."""
    return build_model_with_cfg(build_resnet48, variant, pretrained, model_name=variant, **kwargs)


default_cfgs = generate_default_cfgs(
    {
        "timm_resnet18_48": fer_cfg(),
        "timm_resnet18_48_w32": fer_cfg(),
        "resnet_fast": fer_cfg(pool_size=(3, 3)),
    }
)


@register_model
def timm_resnet18_48(
    pretrained: bool = False, *, width: int = 64, depths: Sequence[int] = (2, 2, 2, 2), **kwargs: Any
) -> ResNet:
    """ResNet-18 (11.2M parameters) at stride 1 for 48x48 input: ImageNet widths 64 to 512."""
    return create_resnet48("timm_resnet18_48", pretrained, width=width, depths=depths, **kwargs)


@register_model
def timm_resnet18_48_w32(
    pretrained: bool = False, *, width: int = 32, depths: Sequence[int] = (2, 2, 2, 2), **kwargs: Any
) -> ResNet:
    """ResNet-18 at half width (32 to 256 channels, 2.8M parameters, about 4x less compute)."""
    return create_resnet48("timm_resnet18_48_w32", pretrained, width=width, depths=depths, **kwargs)


@register_model
def resnet_fast(
    pretrained: bool = False, *, width: int = 32, depths: Sequence[int] = (2, 2, 2, 2), **kwargs: Any
) -> ResNet:
    """ResNet-18 layout at half width with a stride-2 stem: 2.8M parameters, stages at 24, 12, 6 and 3 pixels.

    Built for CPU budgets: it trains at 4.0x the speed of ``timm_resnet18_48_w32`` in fp32
    and 2.6x in bf16 (``fer-kaggle bench`` on 2 CPU cores, docs/benchmarks.md).
    """
    return create_resnet48("resnet_fast", pretrained, width=width, depths=depths, stem_stride=2, **kwargs)
