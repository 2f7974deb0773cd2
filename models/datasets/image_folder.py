"""Image files in one folder per label (``<root>/<label>/*.jpeg``), decoded as serving decodes uploads,
split into training, validation and held-out test parts that never share a place.

Images of one place must not straddle a split, or the test score measures memory of near-copies:
``groups`` links files (same group key, e.g. nearby coordinates in the file name, or the same
bytes) with a union-find, and scikit-learn's ``StratifiedGroupKFold`` (seeded) splits whole groups
while keeping the label shares.

    >>> data = load_image_folder(root, labels, spec, prep, group_key=coordinates, test_share=0.1, seed=20261130)
    >>> data.x_test.shape, data.split["test"]
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from models.card import ImagePreprocessing, InputSpec
from models.datasets import Dataset, DatasetError
from models.preprocessing import InvalidInput, decode_image

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


class UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def link_nearby(points: np.ndarray, radius: float, groups: UnionFind) -> int:
    """Union every two points closer than ``radius`` (grid buckets of that size; neighbours only).
    Returns the number of links made."""
    cells: dict[tuple[int, int], list[int]] = {}
    for index, (x, y) in enumerate(points):
        cells.setdefault((int(np.floor(x / radius)), int(np.floor(y / radius))), []).append(index)
    links = 0
    for (cx, cy), members in cells.items():
        near = np.asarray([j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in cells.get((cx + dx, cy + dy), [])])
        members = np.asarray(members)
        distance = np.linalg.norm(points[members][:, None, :] - points[near][None, :, :], axis=2)
        for a, b in zip(*np.nonzero((distance < radius) & (near[None, :] > members[:, None]))):
            groups.union(int(members[a]), int(near[b]))
            links += 1
    return links


def grouped_split(labels: np.ndarray, groups: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held-out) indices: about ``share`` of the examples, whole groups, label shares kept."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=round(1 / share), shuffle=True, random_state=seed)
    rest, held_out = next(folds.split(np.zeros(len(labels)), labels, groups))
    return rest, held_out


def load_image_folder(
    root: str | Path,
    labels: tuple[str, ...],
    spec: InputSpec,
    prep: ImagePreprocessing,
    coordinates: Callable[[str], tuple[float, float] | None] | None = None,
    link_radius: float = 0.0,
    test_share: float = 0.1,
    validation_share: float = 0.1,
    seed: int = 0,
    source: str | None = None,
) -> Dataset:
    """Every image under ``root/<label>/``, decoded to ``spec`` by ``prep``, in grouped splits.

    Files are linked into one group when they are byte-identical or, with ``coordinates`` (a file
    name -> (x, y) or None), when their places lie closer than ``link_radius``.
    """
    root = Path(root)
    paths, targets = [], []
    for index, label in enumerate(labels):
        folder = root / label
        if not folder.is_dir():
            raise DatasetError(f"{folder}: missing; expected one folder per label ({', '.join(labels)}) under {root}")
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += found
        targets += [index] * len(found)
    if not paths:
        raise DatasetError(f"{root}: no image files")
    contents = [p.read_bytes() for p in paths]
    digests = [hashlib.sha256(c).hexdigest() for c in contents]
    groups = UnionFind(len(paths))
    first_of: dict[str, int] = {}
    for i, digest in enumerate(digests):
        groups.union(i, first_of.setdefault(digest, i))
    linked = 0
    if coordinates is not None and link_radius > 0:
        places = [coordinates(p.name) for p in paths]
        located = [i for i, place in enumerate(places) if place is not None]
        sub = UnionFind(len(located))
        linked = link_nearby(np.asarray([places[i] for i in located], dtype=np.float64), link_radius, sub)
        for k, i in enumerate(located):
            groups.union(i, located[sub.find(k)])
    group_ids = np.asarray([groups.find(i) for i in range(len(paths))])
    y = np.asarray(targets, dtype=np.int64)

    trainval, test = grouped_split(y, group_ids, test_share, seed)
    inner_train, inner_val = grouped_split(y[trainval], group_ids[trainval], validation_share / (1 - test_share), seed + 1)
    train, val = trainval[inner_train], trainval[inner_val]
    assert not set(group_ids[test]) & set(group_ids[trainval]) and not set(group_ids[val]) & set(group_ids[train])

    def decode(indices: np.ndarray) -> np.ndarray:
        try:
            return np.concatenate([decode_image(contents[i], spec, prep, field=str(paths[i])) for i in indices])
        except InvalidInput as exc:
            raise DatasetError(str(exc)) from None

    fingerprint = hashlib.sha256("".join(sorted(f"{p.parent.name}/{p.name}:{d}\n" for p, d in zip(paths, digests))).encode()).hexdigest()
    sizes, counts = np.unique(group_ids, return_counts=True)
    split = {
        "seed": seed,
        "grouping": f"byte-identical files, and places closer than {link_radius:g} (file-name coordinates)" if link_radius else "byte-identical files",
        "groups": int(len(sizes)),
        "largest_group": int(counts.max()),
        "links": linked,
        **{name: {"examples": int(len(part)), "shares": {labels[k]: round(float(np.mean(y[part] == k)), 4) for k in range(len(labels))}}
           for name, part in (("train", train), ("validation", val), ("test", test))},
    }
    log.info("%s: %d images in %d groups; train %d, validation %d, test %d", root, len(paths), len(sizes), len(train), len(val), len(test))
    return Dataset(
        x_train=decode(train), y_train=y[train], x_test=decode(test), y_test=y[test],
        x_val=decode(val), y_val=y[val],
        source=source or str(root), fingerprint={"files": str(len(paths)), "sha256_of_files": fingerprint}, split=split,
    )
