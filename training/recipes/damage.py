"""damage: the course's Project 3, buildings in satellite images after Hurricane Harvey, damaged or not.

Data: 21,322 RGB JPEGs of 128 x 128, one folder per label, vendored in ``data/hurricane-damage/``
(its README gives the source: Cao and Choe, IEEE DataPort, doi:10.21227/sdad-1e56). File names are
the buildings' coordinates; one place can appear in both folders, and neighbouring crops overlap on
the ground (about 0.45 m per pixel: a crop covers about 58 m), so the held-out split groups every
file within LINK_RADIUS_M of another (and byte-identical files) on one side.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.card import ImagePreprocessing, InputSpec, OutputSpec
from training.datasets import Dataset
from training.datasets.image_folder import FolderSplit, load_image_folder, plan_split
from training.recipes import Recipe, Training

LABELS = ("no_damage", "damage")
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "hurricane-damage"
DATA_ENV = "HURRICANE_DAMAGE_DIR"
LINK_RADIUS_M = 80  # crops closer than this overlap on the ground
SPLIT_SEED = 42
TEST_SHARE = 0.125
VALIDATION_SHARE = 0.125
SIDE = 64  # trained on 64 x 64: a quarter of the 128 x 128 files' cost per epoch, within 20 minutes on 2 cores


def coordinates(filename: str) -> tuple[float, float] | None:
    """``-93.528502_30.987438.jpeg`` -> (longitude, latitude)."""
    try:
        longitude, latitude = filename.rsplit(".", 1)[0].split("_")
        return float(longitude), float(latitude)
    except ValueError:
        return None


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir or os.environ.get(DATA_ENV) or DATA_DIR)


SPLIT = dict(coordinates=coordinates, link_radius_m=LINK_RADIUS_M, test_share=TEST_SHARE, validation_share=VALIDATION_SHARE, seed=SPLIT_SEED)


def load_data(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Dataset:
    """The vendored images (or ``data_dir``, or ``HURRICANE_DAMAGE_DIR``), decoded as serving decodes
    uploads, in grouped splits. Nothing is downloaded."""
    root = data_root(data_dir)
    source = str(root.relative_to(DATA_DIR.parents[1])) if root.is_relative_to(DATA_DIR.parents[1]) else str(root)
    return load_image_folder(root, LABELS, RECIPE.input, RECIPE.preprocessing, source=source, **SPLIT)


def split(data_dir: str | os.PathLike | None = None) -> FolderSplit:
    """The files and their parts, undecoded: ``split().held_out()`` are the JPEGs training never saw."""
    return plan_split(data_root(data_dir), LABELS, **SPLIT)


RECIPE = Recipe(
    name="damage",
    description="Hurricane Harvey damage: whether the building in a satellite image (RGB) is damaged.",
    task="image-classification",
    input=InputSpec(kind="image", shape=(SIDE, SIDE, 3), value_range=(0, 255), divide_by=255),
    # Uploads of any size: centre-cropped to a square (the building is in the middle), resized like the training files.
    preprocessing=ImagePreprocessing(colour_mode="RGB", aspect="crop", resize="bilinear", invert="never"),
    output=OutputSpec(kind="sigmoid", labels=LABELS, positive_label="damage"),
    load_data=load_data,
    versions={
        "v1": Training(
            architecture="alternate_lenet5",
            description="The course's alternate LeNet-5 (Cao and Choe, arXiv 1807.01688, Table 1): four 3x3 convolutions with max pooling, dropout, a dense layer of 512.",
            epochs=15,
            batch_size=64,
            augment=("flip_lr", "flip_ud"),
            restore_best=True,
        ),
        "v2": Training(
            architecture="small_resnet",
            description="A small residual network with batch normalisation and global average pooling, trained with every flip and quarter turn, "
            "brightness, contrast and cutout changes, AdamW and a warmed-up cosine learning rate, in bfloat16.",
            epochs=15,
            batch_size=64,
            learning_rate=0.002,
            cosine_decay=True,
            warmup_epochs=1,
            weight_decay=0.05,
            label_smoothing=0.05,
            augment=("flip_lr", "flip_ud", "rot90", "brightness:0.3", "contrast:0.3", "cutout:0.25"),
            restore_best=True,
            mixed_precision="mixed_bfloat16",
        ),
    },
    shifts={
        "brightness": {"kind": "brightness", "delta": 50, "about": "every level +50 (haze, overexposure)"},
        "contrast": {"kind": "contrast", "factor": 0.6, "about": "every level x0.6 (a dim, flat image)"},
        "blur": {"kind": "blur", "sigma": 1.5, "about": "Gaussian blur, sigma 1.5 px (a lower resolution)"},
        "noise": {"kind": "noise", "sigma": 20, "about": "Gaussian noise, sigma 20 (sensor noise)"},
        "rotation": {"kind": "rotation", "max_degrees": 30, "about": "rotated by up to 30 degrees"},
        "jpeg": {"kind": "jpeg", "quality": 15, "about": "re-encoded as JPEG at quality 15"},
        "occlusion": {"kind": "occlusion", "size": 20, "margin": 8, "about": "a black 20x20 patch (a cloud, a tree)"},
    },
)
