"""Request and response shapes (pydantic). They document the API and type the native BentoML APIs."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field

from models.specs import CLASS_NAMES, PIXEL_MAX, PIXEL_MIN

Pixel = Annotated[float, Field(ge=PIXEL_MIN, le=PIXEL_MAX, allow_inf_nan=False)]
ImageRows = Annotated[list[Annotated[list[Pixel], Field(min_length=28, max_length=28)]], Field(min_length=28, max_length=28)]


class ImageRequest(BaseModel):
    """The course's body: one 28x28 image of 0..255 intensities."""

    image: ImageRows


class BatchRequest(BaseModel):
    """Several 28x28 images in one request."""

    images: list[ImageRows] = Field(min_length=1)


class Prediction(BaseModel):
    class_id: int = Field(ge=0, lt=len(CLASS_NAMES))
    label: str
    confidence: float = Field(ge=0, le=1)


class PredictResponse(BaseModel):
    model: str
    version: str
    result: list[list[float]] = Field(description="one row of class probabilities per image, as model.predict(...).tolist()")
    predictions: list[Prediction]


class ErrorResponse(BaseModel):
    error: str


class VersionStatus(BaseModel):
    version: str
    aliases: list[str]
    status: Literal["ready", "loading", "unavailable"]
    reason: str | None = None


def predict_response(model: str, version: str, probabilities: np.ndarray) -> dict:
    """The JSON body for a prediction: the course's ``result`` plus readable predictions."""
    class_ids = probabilities.argmax(axis=1)
    confidences = probabilities[np.arange(len(class_ids)), class_ids]
    return {
        "model": model,
        "version": version,
        "result": probabilities.tolist(),
        "predictions": [
            {"class_id": int(c), "label": CLASS_NAMES[c], "confidence": float(p)} for c, p in zip(class_ids, confidences)
        ],
    }
