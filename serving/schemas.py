"""Request and response shapes (pydantic) of the typed BentoML APIs, and the prediction body of every route."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field

from models.specs import CLASS_NAMES, IMAGE_HEIGHT, IMAGE_WIDTH, PIXEL_MAX, PIXEL_MIN

# strict: JSON true/false are not intensities (pydantic would read them as 1 and 0).
Pixel = Annotated[float, Field(ge=PIXEL_MIN, le=PIXEL_MAX, allow_inf_nan=False, strict=True)]
Row = Annotated[list[Pixel], Field(min_length=IMAGE_WIDTH, max_length=IMAGE_WIDTH)]
ImageRows = Annotated[list[Row], Field(min_length=IMAGE_HEIGHT, max_length=IMAGE_HEIGHT)]


class Prediction(BaseModel):
    class_id: int = Field(ge=0, lt=len(CLASS_NAMES))
    label: str
    confidence: float = Field(ge=0, le=1)


class PredictResponse(BaseModel):
    model: str
    version: str
    result: list[list[float]] = Field(description="one row of class probabilities per image, as model.predict(...).tolist()")
    predictions: list[Prediction]


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
