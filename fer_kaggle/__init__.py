"""fer_kaggle: a toolkit for facial-expression Kaggle competitions (FER2013 and relatives)."""

from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS

__version__ = "0.1.0"

__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "NUM_CLASSES", "NUM_PIXELS", "__version__"]
