"""Fully connected baseline whose hidden width is solved to match a CNN's parameter count.

Comparing a CNN with an MLP of the same size isolates what convolution buys on 48x48 faces.
"""

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from fer_kaggle.constants import IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.errors import ConfigError
from fer_kaggle.models.checks import check_positive_int, check_rate
from fer_kaggle.models.defaults import fer_cfg
from fer_kaggle.models.factory import count_parameters, create_model

__all__ = ["DNN", "build_dnn", "dnn_parameter_count", "solve_hidden_width"]

logger = logging.getLogger(__name__)

#: Largest relative gap between the DNN's and the matched model's parameter counts.
MATCH_TOLERANCE = 0.02

#: Model matched when neither ``width`` nor ``match`` is given.
DEFAULT_MATCH = "resnet_seed"


class DNN(nn.Module):
    """Flatten, ``depth`` x (Linear, BatchNorm1d, ReLU, Dropout), then a linear classifier.

    The hidden linear layers have no bias because the BatchNorm after them adds one.

    Args:
        width: Units in every hidden layer.
        depth: Number of hidden layers.
        in_chans: Input channels.
        img_size: Input height and width in pixels (one int for a square image).
        num_classes: Classifier outputs.
        drop_rate: Dropout probability after every hidden layer.
    """

    def __init__(
        self,
        width: int,
        depth: int = 2,
        in_chans: int = 1,
        img_size: int | Sequence[int] = IMAGE_SIZE,
        num_classes: int = NUM_CLASSES,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        image_height, image_width = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.in_features = in_chans * image_height * image_width
        self.num_classes = num_classes
        self.num_features = width
        self.drop_rate = drop_rate

        layers: list[nn.Module] = [nn.Flatten(1)]
        fan_in = self.in_features
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            layers.append(nn.Dropout(drop_rate))
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def get_classifier(self) -> nn.Module:
        """Return the final linear layer (timm's model interface)."""
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one of ``num_classes`` outputs."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last hidden layer's activations, shape (batch, width)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Return logits, or ``x`` unchanged when ``pre_logits`` is set."""
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape (batch, num_classes) for images of shape (batch, C, H, W)."""
        return self.forward_head(self.forward_features(x))


def dnn_parameter_count(in_features: int, width: int, depth: int, num_classes: int) -> int:
    """Return the trainable parameters of a :class:`DNN`, in closed form.

    The first hidden layer has ``in_features * width`` weights, each further one ``width**2``,
    every BatchNorm ``2 * width``, and the classifier ``(width + 1) * num_classes``.
    """
    hidden = in_features * width + (depth - 1) * width * width + depth * 2 * width
    return hidden + (width + 1) * num_classes


def solve_hidden_width(target: int, in_features: int, depth: int, num_classes: int) -> int:
    """Return the hidden width whose DNN parameter count is closest to ``target``.

    The count is ``a * w**2 + b * w + c`` with ``a = depth - 1``. The positive root of the
    quadratic is rounded down and up, and the integer closer to ``target`` wins.

    Raises:
        ConfigError: even a width of 1 exceeds ``target``, or no width comes within
            ``MATCH_TOLERANCE``.
    """
    a = depth - 1
    b = in_features + 2 * depth + num_classes
    c = num_classes - target
    if a == 0:
        root = -c / b
    else:
        root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)

    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    best = min(candidates, key=lambda width: abs(dnn_parameter_count(in_features, width, depth, num_classes) - target))
    gap = abs(dnn_parameter_count(in_features, best, depth, num_classes) - target) / target
    if gap > MATCH_TOLERANCE:
        raise ConfigError(
            f"model 'dnn': cannot match {target:,} parameters with depth {depth} (closest width {best} is "
            f"{gap:.1%} off); match a larger model or lower depth"
        )
    return best


def build_dnn(
    *,
    width: int | None = None,
    match: str | None = None,
    depth: int = 2,
    in_chans: int = 1,
    img_size: int | Sequence[int] = IMAGE_SIZE,
    num_classes: int = NUM_CLASSES,
    drop_rate: float = 0.0,
) -> DNN:
    """Build a :class:`DNN` with an explicit ``width`` or one solved to match model ``match``.

    The matched model is built with the same ``num_classes`` and ``in_chans`` and its own
    defaults, and only its trainable parameters count. With neither argument the DNN matches
    ``DEFAULT_MATCH``.

    Raises:
        ConfigError: both ``width`` and ``match`` are set, a value is invalid, or ``match``
            is not a known model.
    """
    depth = check_positive_int(depth, "depth", "dnn")
    drop_rate = check_rate(drop_rate, "drop_rate", "dnn")
    if width is not None and match is not None:
        raise ConfigError(f"model 'dnn': both width ({width}) and match ('{match}') are set; set only one of them")

    if width is None:
        match = match or DEFAULT_MATCH
        try:
            matched_model = create_model(match, num_classes=num_classes, in_chans=in_chans)
        except ConfigError as error:
            raise ConfigError(f"model 'dnn': invalid match '{match}': {error}") from None
        target = count_parameters(matched_model)
        image_height, image_width = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        width = solve_hidden_width(target, in_chans * image_height * image_width, depth, num_classes)
        logger.info("dnn: hidden width %d matches %s's %d trainable parameters", width, match, target)
    width = check_positive_int(width, "width", "dnn")

    return DNN(
        width=width, depth=depth, in_chans=in_chans, img_size=img_size, num_classes=num_classes, drop_rate=drop_rate
    )


default_cfgs = generate_default_cfgs(
    {"dnn": fer_cfg(fixed_input_size=True, pool_size=None, first_conv=None, classifier="head")}
)


@register_model
def dnn(pretrained: bool = False, *, depth: int = 2, drop_rate: float = 0.5, **kwargs: Any) -> DNN:
    """Fully connected baseline. ``width=N`` fixes the hidden width and ``match="name"`` solves for it."""
    return build_model_with_cfg(build_dnn, "dnn", pretrained, depth=depth, drop_rate=drop_rate, **kwargs)
