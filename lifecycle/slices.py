"""Slice and robustness validation: accuracy per class and under the shifts a deployed model meets.

A recipe names its shifts and their parameters (``Recipe.shifts``); this module applies them. Each
shift is a deterministic function of the held-out images (seeded), so two versions compared by the
promotion gate see exactly the same perturbed images.

    >>> report = evaluate_slices(predict, images, labels, card.labels, recipe.shifts)
    >>> report["worst"]
    {'slice': 'shift:inverted', 'accuracy': 0.21}

Shift kinds (images of 0..255 levels, any size, grey or colour):

==============  ==================================================================
kind            parameters
==============  ==================================================================
brightness      ``delta``: added to every level
contrast        ``factor``: every level multiplied
inverted        none: 255 - level
translation     ``max_pixels``: moved by up to this many pixels in each direction
rotation        ``max_degrees``: rotated by up to this many degrees
noise           ``sigma``: Gaussian noise
occlusion       ``size``, ``margin``: a black size x size patch, at least margin px from the edges
blur            ``sigma``: Gaussian blur, in pixels
jpeg            ``quality``: re-encoded as JPEG at this quality
==============  ==================================================================
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

SEED = 20261125
LEVELS = 255


def _brightness(x, rng, delta):
    return x + delta


def _contrast(x, rng, factor):
    return x * factor


def _inverted(x, rng):
    return LEVELS - x


def _translation(x, rng, max_pixels):
    from scipy import ndimage

    offsets = rng.integers(-max_pixels, max_pixels + 1, size=(len(x), 2))
    return np.stack([ndimage.shift(image, (*offset, 0), order=0, cval=0.0) for image, offset in zip(x, offsets, strict=True)])


def _rotation(x, rng, max_degrees):
    from scipy import ndimage

    angles = rng.uniform(-max_degrees, max_degrees, size=len(x))
    return np.stack([ndimage.rotate(image, angle, axes=(1, 0), reshape=False, order=1, cval=0.0) for image, angle in zip(x, angles, strict=True)])


def _noise(x, rng, sigma):
    return x + rng.normal(0.0, sigma, size=x.shape)


def _occlusion(x, rng, size, margin=0):
    out = x.copy()
    height, width = x.shape[1:3]
    size = min(size, height, width)
    (top_low, top_high), (left_low, left_high) = [(min(margin, side - size), max(side - margin - size, min(margin, side - size))) for side in (height, width)]
    if (top_low, top_high) == (left_low, left_high):
        corners = rng.integers(top_low, top_high + 1, size=(len(x), 2))
    else:
        corners = np.stack([rng.integers(top_low, top_high + 1, size=len(x)), rng.integers(left_low, left_high + 1, size=len(x))], axis=1)
    for image, (top, left) in zip(out, corners, strict=True):
        image[top : top + size, left : left + size] = 0.0
    return out


def _blur(x, rng, sigma):
    from scipy import ndimage

    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))


def _jpeg(x, rng, quality):
    from PIL import Image

    out = np.empty_like(x)
    for i, image in enumerate(np.clip(x, 0, LEVELS).astype(np.uint8)):
        buffer = io.BytesIO()
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer), dtype=np.float32).reshape(image.shape)
    return out


KINDS: dict[str, Callable] = {
    "brightness": _brightness,
    "contrast": _contrast,
    "inverted": _inverted,
    "translation": _translation,
    "rotation": _rotation,
    "noise": _noise,
    "occlusion": _occlusion,
    "blur": _blur,
    "jpeg": _jpeg,
}


def default_shifts(shape: tuple[int, ...]) -> dict[str, dict]:
    """Shifts for an image model whose recipe names none (an imported model), sized by its images."""
    side = min(shape[:2])
    patch = max(1, round(side * 0.4))
    return {
        "brightness": {"kind": "brightness", "delta": 60, "about": "every level +60 (a lighter photo)"},
        "contrast": {"kind": "contrast", "factor": 0.5, "about": "every level x0.5 (a dim photo)"},
        "rotation": {"kind": "rotation", "max_degrees": 15, "about": "rotated by up to 15 degrees"},
        "noise": {"kind": "noise", "sigma": 25, "about": "Gaussian noise, sigma 25"},
        "occlusion": {"kind": "occlusion", "size": patch, "margin": side // 7, "about": f"a black {patch}x{patch} patch"},
    }


def apply_shift(spec: dict, images: np.ndarray, seed: int = SEED) -> np.ndarray:
    """``images`` (N, H, W, C) in 0..255 under a shift ``{"kind": ..., parameters}``, float32 clipped to 0..255."""
    parameters = {k: v for k, v in spec.items() if k not in ("kind", "about")}
    shifted = KINDS[spec["kind"]](np.asarray(images, dtype=np.float32), np.random.default_rng(seed), **parameters)
    return np.clip(shifted, 0, LEVELS).astype(np.float32)


def evaluate_slices(
    predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray, names: tuple[str, ...], shifts: dict[str, dict], shape: tuple[int, ...], seed: int = SEED
) -> dict:
    """Accuracy overall, per class, and under each shift (images only); the worst slice of all.

    ``predict`` maps (N, *shape) client values to class probabilities; ``shape`` is the card's input shape.
    """
    labels = np.asarray(labels)
    images = np.asarray(images, dtype=np.float32).reshape(len(images), *shape)
    correct = predict(images).argmax(axis=1) == labels
    classes = {name: _rate(correct[labels == index]) for index, name in enumerate(names)}
    shift_rates = {name: _rate(predict(apply_shift(spec, images, seed)).argmax(axis=1) == labels) for name, spec in shifts.items()}
    # A class without held-out examples (an imported model's evaluation data may lack one) is no
    # evidence of a 0% slice: it is reported, but never the worst.
    present = {name for index, name in enumerate(names) if (labels == index).any()}
    measured = {name: rate for name, rate in classes.items() if name in present}
    slices = {**{f"class:{k}": v for k, v in measured.items()}, **{f"shift:{k}": v for k, v in shift_rates.items()}}
    worst = min(slices, key=slices.__getitem__)
    return {
        "overall": _rate(correct),
        "classes": classes,
        "shifts": shift_rates,
        "shift_specs": shifts,
        "worst": {"slice": worst, "accuracy": slices[worst]},
        "worst_class": min(measured, key=measured.__getitem__),
        "worst_shift": min(shift_rates, key=shift_rates.__getitem__) if shift_rates else None,
        "images": int(len(labels)),
        "seed": seed,
    }


def _rate(hits: np.ndarray) -> float:
    return round(float(hits.mean()), 6) if hits.size else 0.0
