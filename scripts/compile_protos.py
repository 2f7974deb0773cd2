"""Regenerate serving/protocols/grpc/protos/descriptors.binpb, the one FileDescriptorSet that the served
process builds its gRPC messages and services from (serving/protocols/grpc/messages.py):

    .venv/bin/python scripts/compile_protos.py [OUT]      # make protos

Its files are the FileDescriptorProtos that the stock Python packages embed in their generated
``*_pb2.py`` modules (tritonclient, tensorflow-serving-api, tensorflow, grpcio-health-checking,
protobuf; the versions pinned in the requirements files): the four service modules below and every
``*_pb2`` module they import, dependencies first, as ``protoc --include_imports`` orders them. The
modules are read as source text (ast), never imported, so TensorFlow is not loaded. The output is
deterministic: the same installed packages give the same bytes (tests/unit/serving/protocols/grpc).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "serving" / "protocols" / "grpc" / "protos" / "descriptors.binpb"

# The generated modules of the services the served process speaks; their imports come along.
ENTRIES = [
    "tritonclient.grpc.service_pb2",  # inference.GRPCInferenceService (Open Inference Protocol, Triton)
    "tensorflow_serving.apis.prediction_service_pb2",  # tensorflow.serving.PredictionService
    "tensorflow_serving.apis.model_service_pb2",  # tensorflow.serving.ModelService
    "grpc_health.v1.health_pb2",  # grpc.health.v1.Health
]


def module_file(name: str) -> Path:
    """The source file of a module, found without importing it or its packages."""
    top, *rest = name.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name}: package {top!r} is not installed")
    for base in spec.submodule_search_locations:
        path = Path(base, *rest).with_suffix(".py")
        if path.is_file():
            return path
    raise ModuleNotFoundError(f"{name}: no {'/'.join(rest)}.py under {list(spec.submodule_search_locations)}")


def read_module(name: str) -> tuple[bytes, list[str]]:
    """A generated module's serialized FileDescriptorProto and the ``*_pb2`` modules it imports."""
    path = module_file(name)
    serialized, imports = None, []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "AddSerializedFile":
            serialized = ast.literal_eval(node.args[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.endswith("_pb2"):  # from x.y_pb2 import *  (a public import)
                imports.append(node.module)
            imports += [f"{node.module}.{alias.name}" for alias in node.names if alias.name.endswith("_pb2")]
    if serialized is None:
        raise ValueError(f"{path}: no AddSerializedFile(b'...') call; not a generated module of this protobuf era")
    return serialized, imports


def descriptor_set(entries: list[str] = ENTRIES) -> bytes:
    """The FileDescriptorSet of these modules and everything they import, dependencies first."""
    files: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        serialized, imports = read_module(name)
        for dependency in imports:
            visit(dependency)
        files.append(descriptor_pb2.FileDescriptorProto.FromString(serialized))

    for entry in entries:
        visit(entry)
    names: set[str] = set()
    for file in files:
        missing = [d for d in file.dependency if d not in names]
        if missing or file.name in names:
            raise ValueError(f"{file.name}: missing dependencies {missing} or a duplicate file name")
        names.add(file.name)
    return descriptor_pb2.FileDescriptorSet(file=files).SerializeToString(deterministic=True)


def main(out: Path = OUT) -> None:
    data = descriptor_set()
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
