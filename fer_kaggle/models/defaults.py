"""Default timm cfg for the models registered here: 48x48 grayscale input, FER2013's 7 classes."""

from typing import Any

from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES

__all__ = ["FER_MEAN", "FER_STD", "fer_cfg"]

#: Pixel mean and standard deviation on the 0..1 scale, measured over every pixel of the
#: 28,709 images in FER2013's train.csv.gz (0.51357 and 0.30673, rounded).
FER_MEAN: tuple[float, ...] = (0.5136,)
FER_STD: tuple[float, ...] = (0.3067,)


def fer_cfg(**overrides: Any) -> dict[str, Any]:
    """Build a timm default cfg for a 48x48 grayscale FER2013 classifier without weights.

    ``overrides`` replaces entries, e.g. ``pool_size`` for a network with another stride or
    ``first_conv``/``classifier`` for other module names.
    """
    cfg: dict[str, Any] = {
        "url": "",
        "num_classes": NUM_CLASSES,
        "label_names": CLASS_NAMES,
        "input_size": (1, IMAGE_SIZE, IMAGE_SIZE),
        "pool_size": (IMAGE_SIZE // 8, IMAGE_SIZE // 8),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": FER_MEAN,
        "std": FER_STD,
        "first_conv": "conv1",
        "classifier": "fc",
    }
    cfg.update(overrides)
    return cfg
