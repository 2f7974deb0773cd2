"""The request bodies every server receives, one file per scenario, shaped as the scenario's card says.

    >>> bodies = write_bodies(Path("/tmp/bench"), [LOAD["png"], LOAD["v2-binary-1"]])
    >>> bodies["png"].content_type
    'multipart/form-data; boundary=bench-boundary-7MA4YWxkTrZu0gW'
    >>> bodies["v2-binary-1"].headers
    {'Inference-Header-Content-Length': '...'}

Examples are the first held-out test examples of the model's recipe (``recipe.load_data``), or for a
``file`` body the first held-out file of its split (``training.recipes.<name>.split().held_out()``),
sent as it is. The card (``models.store.load_card``) gives the shape and colour mode.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import json
import mimetypes
from pathlib import Path

import numpy as np
from PIL import Image

from bench.scenarios import LOAD, Scenario
from models import store
from models.card import ModelCard
from training import recipes

BOUNDARY = "bench-boundary-7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclasses.dataclass(frozen=True)
class Body:
    path: Path
    content_type: str  # "" sends none (tritonclient's binary requests have none)
    examples: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # more request headers, also in <path>.headers for wrk

    def request_headers(self) -> dict[str, str]:
        return {**({"Content-Type": self.content_type} if self.content_type else {}), **self.headers}


def test_examples(model: str, version: str, count: int) -> tuple[ModelCard, np.ndarray]:
    """The card and the first ``count`` held-out test examples of the model's data, uint8 in the card's shape."""
    card = store.load_card(model, version)
    examples = held_out_examples(model)[:count]
    if examples.dtype != np.uint8 or examples[0].size != int(np.prod(card.input.shape)):
        raise ValueError(f"{card.tag}: test examples {examples.dtype} {examples.shape[1:]} do not fit the card's uint8 {card.input.shape}")
    return card, examples.reshape(len(examples), *card.input.shape)


@functools.cache
def held_out_examples(model: str) -> np.ndarray:
    """Every held-out test example of the model's data, loaded once."""
    return recipes.get(model).load_data(allow_download=False).x_test


def course_image(example: np.ndarray, card: ModelCard) -> np.ndarray:
    """One example as a course client sends it: a grey image as height x width, without its channel axis."""
    return example[..., 0] if card.is_image and card.input.shape[-1] == 1 else example


def held_out_file(model: str) -> Path:
    """The first held-out file of a model whose recipe splits a folder of files (``split().held_out()``)."""
    module = importlib.import_module(f"{recipes.__name__}.{model}")
    if not hasattr(module, "split"):
        raise ValueError(f"the {model} recipe has no folder of files to take a held-out file from (no split())")
    return module.split().held_out()[0][0]


def image_bytes(image: np.ndarray, card: ModelCard, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode=card.preprocessing.colour_mode if card.preprocessing else None).save(buffer, format=image_format)
    return buffer.getvalue()


def multipart_body(field: str, filename: str, content_type: str, payload: bytes) -> bytes:
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
    return head + payload + f"\r\n--{BOUNDARY}--\r\n".encode()


def v2_binary(examples: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """The body and headers tritonclient's ``InferenceServerClient.infer`` sends for one binary UINT8 input."""
    from tritonclient.http import InferInput
    from tritonclient.http._utils import _get_inference_request

    tensor = InferInput("input", list(examples.shape), "UINT8")
    tensor.set_data_from_numpy(examples, binary_data=True)
    body, json_size = _get_inference_request([tensor], "", None, 0, False, False, 0, None, None)
    return body, {"Inference-Header-Content-Length": str(json_size)}


def scenario_body(scenario: Scenario) -> tuple[bytes, str, dict[str, str]]:
    """(payload, content type, more headers) of one scenario."""
    if scenario.body == "file":
        path = held_out_file(scenario.model)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return multipart_body("image", path.name, content_type, path.read_bytes()), MULTIPART, {}
    card, examples = test_examples(scenario.model, scenario.version, scenario.examples)
    if scenario.body == "json":
        field = {"image": course_image(examples[0], card).tolist()} if len(examples) == 1 else {"images": [course_image(x, card).tolist() for x in examples]}
        return json.dumps(field).encode(), "application/json", {}
    if scenario.body == "png":
        return multipart_body("image", "image.png", "image/png", image_bytes(course_image(examples[0], card), card)), MULTIPART, {}
    if scenario.body == "raw":
        return np.ascontiguousarray(examples).tobytes(), "application/octet-stream", {}
    if scenario.body == "v2-binary":
        payload, headers = v2_binary(examples)
        return payload, "", headers
    if scenario.body == "tfserving-json":
        return json.dumps({"instances": examples.tolist()}).encode(), "application/json", {}
    if scenario.body in ("grpc-v2-raw", "grpc-tfserving-tensor"):  # the serialized request message, sent by bench/grpc_load.py
        from bench import grpc_load

        return grpc_load.request_bytes(scenario, examples), grpc_load.CONTENT_TYPE, {}
    raise ValueError(f"{scenario.name}: no body of kind {scenario.body!r}")


def write_bodies(directory: Path, scenarios: list[Scenario] | None = None) -> dict[str, Body]:
    """Write one body file per scenario (default: every load scenario) into ``directory``, its extra
    headers next to it (``<body>.headers``, read by bench/post.lua); return them by scenario name."""
    bodies = {}
    for scenario in LOAD.values() if scenarios is None else scenarios:
        payload, content_type, headers = scenario_body(scenario)
        path = directory / f"{scenario.name}.body"
        path.write_bytes(payload)
        if headers:
            Path(f"{path}.headers").write_text("".join(f"{name}: {value}\n" for name, value in headers.items()))
        bodies[scenario.name] = Body(path, content_type, scenario.examples, headers)
    return bodies
