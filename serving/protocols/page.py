"""The web page: try any served model and understand it, in a browser (docs/page.md).

    GET  /                                      the page (web/index.html): one self-contained page
    GET  /page/app.mjs, /page/logic.mjs, ...    its script modules and styles (a fixed list of web/ files)
    GET  /docs                                  Swagger UI over /docs.json (it was at /; BentoML's bundled
                                                assets under /static_content, and no third-party tag)
    POST /models/{name}/{version}/input.png     the image as the model sees it: an image file (multipart,
                                                as predict takes it) or a JSON {"image": ...}, after the
                                                card's preprocessing, as a PNG at the model's resolution

The page's files are read once, at start-up, from ``web/`` (bentofile.yaml packs them); each is
served with an ETag, ``Cache-Control: no-cache`` (revalidated, 304 when unchanged) and ``nosniff``.
The page loads nothing from elsewhere, and its Content-Security-Policy says so to the browser: scripts,
styles and requests go to this origin only; images and the report frame may also be ``blob:`` or
``data:`` URLs the page makes itself.

The API token (serving/auth.py) covers these paths like any other unless the deployment opens the
page's static files (``STATIC_PATHS``: they hold no data); the page asks for the token on its first
401 and keeps it in the browser's session storage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from starlette.datastructures import Headers
from starlette.requests import Request

from config import Config
from models.card import ModelCard
from models.preprocessing import example_text, parse_invert
from serving import codecs
from serving.core import INPUT, InferenceRequest, Input, Named
from serving.dataplane import DataPlane
from serving.errors import InvalidInput, NotFound, UnsupportedMediaType
from serving.openapi import error_responses, ok_response, operation
from serving.protocols import Reply, Route, documented

PROTOCOL = "page"
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PNG = "image/png"
INPUT_IMAGE_ACCEPTED = (codecs.JSON, codecs.MULTIPART)
LEVELS = 255
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The page's own origin only; blob: and data: are what the page makes itself (previews, the report's frame and figures).
# Inline styles: the report's <style> (its frame inherits this policy) and the bars' widths.
PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "frame-src blob:",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
COMMON_HEADERS = {"cache-control": "no-cache", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


@dataclasses.dataclass(frozen=True)
class StaticFile:
    path: str  # the URL path
    file: str  # under web/
    summary: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""  # more than the summary's one line, in the API documentation

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[Path(self.file).suffix]


# The files the page is made of, and nothing else of web/ (its tests stay unserved).
STATIC_FILES = (
    StaticFile(
        "/",
        "index.html",
        "The web page: try a model in a browser",
        {"content-security-policy": PAGE_POLICY, "x-frame-options": "DENY"},
        "Try any served model with an image file or a drawing, tell it whether its answer was right, and read its card, worst slices, drift, live accuracy, versions and evaluation report.",
    ),
    StaticFile("/page/app.mjs", "app.mjs", "The page's script (a JavaScript module)"),
    StaticFile("/page/logic.mjs", "logic.mjs", "The page's logic without the DOM (a JavaScript module)"),
    StaticFile("/page/page.css", "page.css", "The page's styles"),
    StaticFile("/docs", "docs.html", "This documentation (Swagger UI over /docs.json)"),
)
# What a deployment may leave open with the API token on (serving/paths.py): the page and its own
# files, which hold no data. Not /docs: it is the API's description.
STATIC_PATHS = frozenset(f.path for f in STATIC_FILES if f.path != "/docs")


# --- the page's files -------------------------------------------------------------------------


def static_handler(static: StaticFile, web_dir: Path = WEB_DIR):
    """A handler answering one file of ``web_dir``, read now: a missing file stops start-up."""
    path = web_dir / static.file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the web page's file is missing (bentofile.yaml must include web/*)")
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**COMMON_HEADERS, **static.headers, "etag": etag}

    async def handler(plane: DataPlane, request: Request) -> Reply:
        if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
            return Reply(b"", 304, static.content_type, headers)
        return Reply(body, 200, static.content_type, headers)

    handler.__name__ = "page" if static.path == "/" else ("swagger_ui" if static.path == "/docs" else "page_file")
    media_type = static.content_type.split(";")[0]
    operation_id = "page" if static.path == "/" else ("swagger_ui" if static.path == "/docs" else "page_" + static.file.replace(".", "_"))
    extra = {"description": static.description} if static.description else {}
    return documented(lambda model, config: {**operation(operation_id, static.summary, {200: ok_response({"type": "string"}, media_type)}, **extra), "tags": ["Page"]})(handler)


# --- the image as the model sees it ---------------------------------------------------------------


def _describe_input_image(model, config: Config) -> dict:
    card = model.card
    if not card.is_image:
        return operation(f"input_image_{model.name}", f"{model.name} takes {card.input.kind} values, not images (404)", {**error_responses(404)})
    shape = "x".join(map(str, card.input.shape))
    body = {
        "required": True,
        "content": {
            codecs.MULTIPART: codecs.BODY_CODECS[codecs.MULTIPART].openapi_media(card, config.limits.max_batch_images),
            codecs.JSON: {"schema": {"type": "object", "required": ["image"], "properties": {"image": model.ref("Example")}}},
        },
    }
    parameters = [
        {
            "name": "invert",
            "in": "query",
            "required": False,
            "schema": {"$ref": "#/components/schemas/Invert"},
            "description": "image files only: invert the levels (auto: as the model's card says)",
        }
    ]
    return operation(
        f"input_image_{model.name}",
        f"The image as {model.name} sees it, as a PNG",
        {200: ok_response({"type": "string", "format": "binary"}, PNG), **error_responses(400, 404, 413, 415, 422)},
        description=(
            f"An image file (as predict takes it) after the card's preprocessing, or one JSON example, as a {shape} PNG: "
            "what the model's input looks like. The web page shows it beside the answer."
        ),
        parameters=parameters,
        requestBody=body,
    )


@dataclasses.dataclass(frozen=True)
class PreviewBody(Input):
    """One image to show as the model sees it: an image file (multipart) or one JSON example."""

    kind: str
    body: bytes
    headers: Headers
    query: Mapping[str, str]
    path: str

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        if not card.is_image:
            raise NotFound(f"{card.tag} takes {card.input.kind} values, not images: it has no input image to show")
        if self.kind not in INPUT_IMAGE_ACCEPTED:
            raise UnsupportedMediaType(f"content type {self.kind or 'none'} is not accepted by {self.path}; use one of {', '.join(INPUT_IMAGE_ACCEPTED)}")
        if "invert" in self.query:
            parse_invert(self.query["invert"])
        if self.kind == codecs.MULTIPART:
            values = await codecs.decode_multipart(self.headers, self.query, self.body, card)
        else:
            values = codecs.decode_json(self.body, card)
        if len(values) != 1:
            raise InvalidInput(f"image: expected one {example_text(card)} image, got {len(values)}")
        return values


@documented(_describe_input_image)
async def input_image(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    """One image, decoded exactly as predict decodes it, answered as a PNG at the model's resolution."""
    preview = PreviewBody(codecs.media_type(request), await request.body(), request.headers, request.query_params, request.url.path)
    view, values = await plane.prepare(InferenceRequest(name, Named(version), {INPUT: preview}))
    return Reply(encode_png(values[0], view.available_card), content_type=PNG, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})


def encode_png(example: np.ndarray, card: ModelCard) -> bytes:
    """One example (H, W, C) of client values as an 8-bit PNG: the card's value range spans 0..255
    (uint8 levels in 0..255 as they are); a card without a range spans the example's own."""
    from PIL import Image

    height, width, channels = card.input.shape
    if example.dtype == np.uint8 and card.input.value_range == (0, LEVELS):
        pixels = example
    else:
        values = example.astype(np.float64)
        low, high = card.input.value_range or (float(values.min()), float(values.max()))
        span = high - low
        scaled = (values - low) / span * LEVELS if span > 0 else np.zeros_like(values)
        pixels = np.clip(np.rint(scaled), 0, LEVELS).astype(np.uint8)
    pixels = pixels.reshape(height, width, channels)
    image = Image.fromarray(pixels[..., 0], "L") if channels == 1 else Image.fromarray(pixels, "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def routes(config: Config, web_dir: Path = WEB_DIR) -> list[Route]:
    table = [Route(static.path, {"GET": static_handler(static, web_dir)}, PROTOCOL) for static in STATIC_FILES]
    table.append(Route("/models/{name}/{version}/input.png", {"POST": input_image}, PROTOCOL))
    return table
