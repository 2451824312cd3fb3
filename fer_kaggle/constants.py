"""Facts about FER2013 that every stage shares."""

#: Class names in FER2013's label order: label ``i`` is ``CLASS_NAMES[i]``.
CLASS_NAMES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES: int = len(CLASS_NAMES)

#: Side of the square grayscale face images, in pixels.
IMAGE_SIZE: int = 48
NUM_PIXELS: int = IMAGE_SIZE * IMAGE_SIZE

#: Split names used in the data cache.
SPLITS: tuple[str, ...] = ("train", "public", "private", "test")
