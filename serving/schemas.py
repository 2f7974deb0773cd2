"""The prediction body every course route and typed API answers, and the typed APIs' shapes (pydantic).

Sized by no model: the published OpenAPI document (serving/openapi.py) narrows them per model from
its card.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field

from models.card import ModelCard, Name

# strict: JSON true/false are not numbers (pydantic would read them as 1 and 0).
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]
# One example as JSON: a vector, an H x W grey image, or an H x W x C image (the card says which).
Example = list[Number] | list[list[Number]] | list[list[list[Number]]]


class Prediction(BaseModel):
    class_id: int = Field(ge=0)
    label: str
    confidence: float = Field(ge=0, le=1)


class PredictResponse(BaseModel):
    model: Name
    version: Name
    result: list[list[float]] = Field(description="one row of class probabilities per example, as model.predict(...).tolist()")
    predictions: list[Prediction]


def prediction_body(card: ModelCard, probabilities: np.ndarray) -> dict:
    """The JSON body for a prediction: the course's ``result`` plus readable predictions."""
    class_ids = probabilities.argmax(axis=1)
    confidences = probabilities[np.arange(len(class_ids)), class_ids]
    labels = card.labels
    return {
        "model": card.name,
        "version": card.version,
        "result": probabilities.tolist(),
        "predictions": [{"class_id": int(c), "label": labels[c], "confidence": float(p)} for c, p in zip(class_ids, confidences, strict=True)],
    }
