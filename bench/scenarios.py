"""What each benchmark scenario sends, where, and with how many wrk connections.

    >>> scenario = LOAD["v2-binary-256"]
    >>> scenario.path, scenario.body, scenario.examples
    ('/v2/models/clothes/versions/v1/infer', 'v2-binary', 256)
    >>> LOAD["grpc-v2-1"].path, LOAD["grpc-v2-1"].twin
    ('/inference.GRPCInferenceService/ModelInfer', 'v2-binary-1')

The scenarios name a served model and version; the shape of what they send comes from that version's
card (bench/bodies.py). The HTTP scenarios are loaded with wrk (bench/load.py), the gRPC ones
(``grpc``: the path is the method) with bench/grpc_load.py, their ``connections`` being the calls in
flight; a gRPC scenario's ``twin`` is the HTTP scenario sending the same version as many examples, for
the report's comparison. ``coldstart`` and ``memory`` are measured on their own launches, not with a load.
"""

from __future__ import annotations

import dataclasses
import re

PROTOCOLS = ("course", "v2", "tfserving", "grpc-v2", "grpc-tfserving")
GRPC_PROTOCOLS = {  # protocol -> the gRPC method called
    "grpc-v2": "/inference.GRPCInferenceService/ModelInfer",
    "grpc-tfserving": "/tensorflow.serving.PredictionService/Predict",
}
BODIES = ("json", "png", "file", "raw", "v2-binary", "tfserving-json", "grpc-v2-raw", "grpc-tfserving-tensor")


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    model: str
    version: str
    protocol: str  # one of PROTOCOLS: the route family the body goes to
    body: str  # one of BODIES, written by bench/bodies.py
    examples: int  # examples per request
    connections: int  # wrk's default for this scenario (gRPC: calls in flight)
    about: str
    twin: str | None = None  # gRPC: the HTTP scenario it is compared with

    def __post_init__(self):
        if self.protocol not in PROTOCOLS or self.body not in BODIES:
            raise ValueError(f"{self.name}: protocol {self.protocol!r} or body {self.body!r} unknown")

    @property
    def grpc(self) -> bool:
        return self.protocol in GRPC_PROTOCOLS

    @property
    def path(self) -> str:
        """The request path, the same on the served servers and the floor (gRPC: the method's path)."""
        if self.grpc:
            return GRPC_PROTOCOLS[self.protocol]
        if self.protocol == "v2":
            return f"/v2/models/{self.model}/versions/{self.version}/infer"
        if self.protocol == "tfserving":
            return f"/v1/models/{self.model}/versions/{tfserving_number(self.version)}:predict"
        return f"/models/{self.model}/{self.version}"


def tfserving_number(version: str) -> int:
    """TF Serving's versions are numbers: ``v1`` is 1 (serving/protocols/tensors.py: version_number)."""
    found = re.fullmatch(r"v?(\d+)", version)
    if found is None:
        raise ValueError(f"version {version!r} has no TF Serving number")
    return int(found.group(1))


LOAD = {
    s.name: s
    for s in (
        Scenario("json", "clothes", "v1", "course", "json", 1, 64, 'one image as the course\'s JSON, `{"image": [[...]]}`'),
        Scenario("png", "clothes", "v1", "course", "png", 1, 64, "one test image as a PNG upload (multipart, field `image`)"),
        Scenario("batch256", "clothes", "v1", "course", "raw", 256, 8, "256 images as raw uint8 bytes (`application/octet-stream`)"),
        Scenario("damage-jpeg", "damage", "v2", "course", "file", 1, 32, "one held-out JPEG of data/hurricane-damage as an upload (Project 3's call)"),
        Scenario("v2-binary-1", "clothes", "v1", "v2", "v2-binary", 1, 64, "one image as tritonclient sends it: binary UINT8 tensor after the JSON header"),
        Scenario(
            "grpc-v2-1",
            "clothes",
            "v1",
            "grpc-v2",
            "grpc-v2-raw",
            1,
            64,
            "one image over gRPC as tritonclient.grpc sends it: a UINT8 1x28x28x1 tensor in `raw_input_contents`, the probabilities back in `raw_output_contents`",
            twin="v2-binary-1",
        ),
        Scenario("v2-binary-256", "clothes", "v1", "v2", "v2-binary", 256, 8, "256 images as one binary UINT8 tensor, as tritonclient sends it"),
        Scenario(
            "grpc-v2-256",
            "clothes",
            "v1",
            "grpc-v2",
            "grpc-v2-raw",
            256,
            8,
            "256 images over gRPC as one UINT8 tensor in `raw_input_contents`, as tritonclient.grpc sends it",
            twin="v2-binary-256",
        ),
        Scenario("tfserving-predict", "clothes", "v1", "tfserving", "tfserving-json", 1, 64, 'one image as TF Serving\'s row format, `{"instances": [...]}`'),
        Scenario(
            "grpc-tfserving-predict",
            "clothes",
            "v1",
            "grpc-tfserving",
            "grpc-tfserving-tensor",
            1,
            64,
            "one image over gRPC as TF Serving's Predict: a DT_UINT8 TensorProto (`tensor_content`) as input `input`",
            twin="tfserving-predict",
        ),
    )
}
COLD_START = "coldstart"  # `bentoml serve` launch to the first 200 on /readyz, and to the first prediction
MEMORY = "memory"  # RSS and PSS per process of a served tree (bench/memory.py)
NAMES = (*LOAD, COLD_START, MEMORY)
FIRST_PREDICTION = "json"  # the scenario whose body times a cold start's first prediction
