"""Read the image-folder layout: ``ROOT/train/<class>/*.png`` and ``ROOT/test/[<class>/]*``."""

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE
from fer_kaggle.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "CLASS_FOLDER_NAMES", "class_index", "read_image", "list_image_folder", "ImageFolder"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"})

#: Accepted class folder names (lower case) for each class index, synonyms included.
CLASS_FOLDER_NAMES: dict[str, int] = {}
for _index, _names in enumerate(
    [
        ("angry", "anger"),
        ("disgust", "disgusted"),
        ("fear", "fearful", "scared"),
        ("happy", "happiness"),
        ("sad", "sadness"),
        ("surprise", "surprised"),
        ("neutral",),
    ]
):
    CLASS_FOLDER_NAMES[str(_index)] = _index
    for _name in _names:
        CLASS_FOLDER_NAMES[_name] = _index


def class_index(folder: Path) -> int:
    """Map a class folder name (any case, synonyms, or a digit 0-6) to its FER2013 label.

    Raises:
        DataError: the name is not one of the accepted class names.
    """
    key = folder.name.strip().lower()
    if key not in CLASS_FOLDER_NAMES:
        accepted = ", ".join(sorted(CLASS_FOLDER_NAMES, key=lambda name: (CLASS_FOLDER_NAMES[name], name)))
        raise DataError(f"{folder}: unknown class folder {folder.name!r}; accepted names (any case): {accepted}")
    return CLASS_FOLDER_NAMES[key]


def read_image(path: Path, conversions: Counter) -> np.ndarray:
    """Decode one image as 48x48 uint8 grayscale, counting each conversion in ``conversions``.

    Raises:
        DataError: the file cannot be decoded as an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "L":
                conversions[f"converted from {image.mode} to grayscale"] += 1
                image = image.convert("L")
            if image.size != (IMAGE_SIZE, IMAGE_SIZE):
                conversions[f"resized to {IMAGE_SIZE}x{IMAGE_SIZE}"] += 1
                image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot decode image ({error}); delete or replace the file") from None


@dataclass
class ImageFolder:
    """Images of one split folder: paths and labels (``-1`` when the folder has no class subfolders)."""

    paths: list[Path]
    labels: np.ndarray
    set_aside: list[Path]


def list_image_folder(root: Path) -> ImageFolder:
    """List the images under a split folder, with class subfolders or without.

    Files without an image suffix (``.DS_Store``, ``Thumbs.db``, notes) are set aside and
    returned, never read. Paths are sorted so that ids follow a stable order.

    Raises:
        DataError: images sit both directly in ``root`` and in class subfolders, or a
            subfolder is not a known class.
    """
    entries = sorted(root.iterdir())
    folders = [entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")]
    files = [entry for entry in entries if entry.is_file()]
    loose_images = [entry for entry in files if entry.suffix.lower() in IMAGE_SUFFIXES]
    set_aside = [entry for entry in files if entry.suffix.lower() not in IMAGE_SUFFIXES]

    if folders and loose_images:
        raise DataError(
            f"{root}: has both class subfolders and {len(loose_images)} loose images (e.g. {loose_images[0].name}); "
            "put every image in a class folder, or none for unlabelled test images"
        )
    if not folders:
        return ImageFolder(loose_images, np.full(len(loose_images), -1, dtype=np.int64), set_aside)

    paths: list[Path] = []
    labels: list[int] = []
    for folder in sorted(folders, key=lambda path: (class_index(path), path.name)):
        label = class_index(folder)
        for entry in sorted(folder.rglob("*")):
            if not entry.is_file():
                continue
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(entry)
                labels.append(label)
            else:
                set_aside.append(entry)
    return ImageFolder(paths, np.asarray(labels, dtype=np.int64), set_aside)
