"""The served process's gRPC protocols: Open Inference Protocol (Triton's ``inference.GRPCInferenceService``),
TensorFlow Serving's ``PredictionService`` and ``ModelService``, and ``grpc.health.v1.Health``."""
