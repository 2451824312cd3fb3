"""The seed model: a 0.9M-parameter residual CNN for 48x48 grayscale faces.

Every block is two 3x3 convolutions with a shortcut around them (timm's BasicBlock). The
four stages have 24, 48, 96 and 192 channels and 2, 2, 2 and 1 blocks. The last stage has
one block because a 192-channel block alone costs 0.66M parameters. With these values the
model has 909,871 trainable parameters, 0.35% below the 913,095 of the reference residual
CNN for FER2013 that the baselines are compared against.

NOTE: only the reference network's size is matched. Its exact layers are not known here,
so accuracy can differ from the reference at equal size.
"""

from collections.abc import Sequence
from typing import Any

from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import ResNet

from fer_kaggle.models.defaults import fer_cfg
from fer_kaggle.models.timm_resnet import create_resnet48

__all__: list[str] = []

default_cfgs = generate_default_cfgs({"resnet_seed": fer_cfg()})


@register_model
def resnet_seed(
    pretrained: bool = False, *, width: int = 24, depths: Sequence[int] = (2, 2, 2, 1), **kwargs: Any
) -> ResNet:
    """Seed residual CNN: 3x3 stride-1 stem, then stages of ``width * 2**i`` channels."""
    return create_resnet48("resnet_seed", pretrained, width=width, depths=depths, **kwargs)
