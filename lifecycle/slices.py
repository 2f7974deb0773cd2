"""Slice and robustness validation: accuracy per class and under the shifts a deployed model meets.

Each shift is a deterministic function of the test images (seeded), so two versions compared by
the promotion gate see exactly the same perturbed images.

    >>> report = evaluate_slices(predict, x_test, y_test)     # predict: (N, 28, 28) -> (N, 10)
    >>> report["worst"]
    {'slice': 'shift:inverted', 'accuracy': 0.21, ...}
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from models.specs import CLASS_NAMES, PIXEL_MAX

SEED = 20261125
OCCLUSION_SIZE = 12  # a 12x12 black patch over the garment: the "mask" (18% of the image)
MAX_SHIFT_PX = 3
MAX_ROTATION_DEG = 15
NOISE_SIGMA = 25.0


def brightness(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x + 60.0


def contrast(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x * 0.5


def inverted(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return PIXEL_MAX - x


def translation(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    offsets = rng.integers(-MAX_SHIFT_PX, MAX_SHIFT_PX + 1, size=(len(x), 2))
    return np.stack([ndimage.shift(image, offset, order=0, cval=0.0) for image, offset in zip(x, offsets)])


def rotation(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    angles = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, size=len(x))
    return np.stack([ndimage.rotate(image, angle, reshape=False, order=1, cval=0.0) for image, angle in zip(x, angles)])


def noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, NOISE_SIGMA, size=x.shape)


def occlusion(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black patch at a random place over the middle of each image."""
    out = x.copy()
    corners = rng.integers(4, 28 - 4 - OCCLUSION_SIZE + 1, size=(len(x), 2))
    for image, (top, left) in zip(out, corners):
        image[top : top + OCCLUSION_SIZE, left : left + OCCLUSION_SIZE] = 0.0
    return out


SHIFTS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "brightness": brightness,
    "contrast": contrast,
    "inverted": inverted,
    "translation": translation,
    "rotation": rotation,
    "noise": noise,
    "occlusion": occlusion,
}

SHIFT_DESCRIPTIONS = {
    "brightness": "every pixel +60 (a lighter photo)",
    "contrast": "every pixel x0.5 (a dim, low-contrast photo)",
    "inverted": "255 - pixel (dark garment on a light background, sent without inversion)",
    "translation": f"moved by up to {MAX_SHIFT_PX} px in each direction",
    "rotation": f"rotated by up to {MAX_ROTATION_DEG} degrees",
    "noise": f"Gaussian noise, sigma {NOISE_SIGMA:g}",
    "occlusion": f"a black {OCCLUSION_SIZE}x{OCCLUSION_SIZE} patch over the garment (the 'mask')",
}


def apply_shift(name: str, images: np.ndarray, seed: int = SEED) -> np.ndarray:
    """``images`` (N, 28, 28) in 0..255 under shift ``name``, as float32 clipped to 0..255."""
    shifted = SHIFTS[name](np.asarray(images, dtype=np.float32), np.random.default_rng(seed))
    return np.clip(shifted, 0, PIXEL_MAX).astype(np.float32)


def evaluate_slices(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray, seed: int = SEED) -> dict:
    """Accuracy overall, per class, and under each shift; the worst slice of all."""
    labels = np.asarray(labels)
    predicted = predict(np.asarray(images, dtype=np.float32)).argmax(axis=1)
    correct = predicted == labels
    classes = {name: _rate(correct[labels == index]) for index, name in enumerate(CLASS_NAMES)}
    shifts = {}
    shifted_predictions = {}
    for name in SHIFTS:
        shifted_predictions[name] = predict(apply_shift(name, images, seed)).argmax(axis=1)
        shifts[name] = _rate(shifted_predictions[name] == labels)
    slices = {**{f"class:{k}": v for k, v in classes.items()}, **{f"shift:{k}": v for k, v in shifts.items()}}
    worst = min(slices, key=slices.get)
    return {
        "overall": _rate(correct),
        "classes": classes,
        "shifts": shifts,
        "worst": {"slice": worst, "accuracy": slices[worst]},
        "worst_class": min(classes, key=classes.get),
        "worst_shift": min(shifts, key=shifts.get),
        "images": int(len(labels)),
        "seed": seed,
    }


def _rate(hits: np.ndarray) -> float:
    return round(float(hits.mean()), 6) if hits.size else 0.0
