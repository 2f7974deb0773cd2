"""Codecs, one registry each: request bodies by media type (``bodies``), tensors by datatype (``tensors``).

>>> from serving import codecs
>>> codecs.BODY_CODECS["application/x-npy"], codecs.TENSOR_CODECS["UINT8"].dtype
"""

from serving.codecs.bodies import (
    ACCEPTED,
    BODY_CODECS,
    JSON,
    MULTIPART,
    NPY,
    RAW,
    Body,
    BodyCodec,
    accepted,
    check_form_fields,
    decode,
    decode_json,
    decode_multipart,
    decode_npy,
    decode_raw,
    json_fields,
    json_hint,
    lenient_json,
    media_type,
    parse_form,
    register,
)
from serving.codecs.tensors import TENSOR_CODECS, TensorCodec
from serving.core import check_batch, holds_booleans

__all__ = [
    "ACCEPTED",
    "BODY_CODECS",
    "JSON",
    "MULTIPART",
    "NPY",
    "RAW",
    "TENSOR_CODECS",
    "Body",
    "BodyCodec",
    "TensorCodec",
    "accepted",
    "check_batch",
    "check_form_fields",
    "decode",
    "decode_json",
    "decode_multipart",
    "decode_npy",
    "decode_raw",
    "holds_booleans",
    "json_fields",
    "json_hint",
    "lenient_json",
    "media_type",
    "parse_form",
    "register",
]
