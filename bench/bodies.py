"""The request bodies every server receives: one Fashion-MNIST test image as JSON or PNG, 256 as raw bytes.

    >>> bodies = write_bodies(Path("/tmp/bench"))
    >>> bodies["png"].content_type
    'multipart/form-data; boundary=bench-boundary-7MA4YWxkTrZu0gW'
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from models.recipes.clothes import load_data

BATCH_IMAGES = 256
BOUNDARY = "bench-boundary-7MA4YWxkTrZu0gW"


@dataclasses.dataclass(frozen=True)
class Body:
    path: Path
    content_type: str
    images: int


def test_images(count: int) -> np.ndarray:
    """The first ``count`` Fashion-MNIST test images, uint8 (count, 28, 28)."""
    return load_data(allow_download=False).x_test[:count]


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def multipart_body(field: str, filename: str, content_type: str, payload: bytes) -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{BOUNDARY}--\r\n".encode()


def write_bodies(directory: Path) -> dict[str, Body]:
    """Write one body file per scenario into ``directory``; return them by scenario name."""
    images = test_images(BATCH_IMAGES)
    contents = {
        "json": (json.dumps({"image": images[0].tolist()}).encode(), "application/json", 1),
        "png": (
            multipart_body("image", "image.png", "image/png", png_bytes(images[0])),
            f"multipart/form-data; boundary={BOUNDARY}",
            1,
        ),
        "batch256": (np.ascontiguousarray(images, dtype=np.uint8).tobytes(), "application/octet-stream", BATCH_IMAGES),
    }
    bodies = {}
    for scenario, (payload, content_type, count) in contents.items():
        path = directory / f"{scenario}.body"
        path.write_bytes(payload)
        bodies[scenario] = Body(path, content_type, count)
    return bodies
