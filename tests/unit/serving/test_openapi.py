"""serving/openapi.py: every answer schema a route refers to is among the document's components (a
missing one makes the published document invalid: tests/e2e/test_fuzz.py validates the whole)."""

import json
import re

import pytest

from serving import schemas
from tests.conftest import ROOT


def test_every_schema_a_route_refers_to_is_a_component():
    referred = set()
    for path in sorted((ROOT / "serving" / "protocols").rglob("*.py")):
        referred |= set(re.findall(r"ref\(schemas\.(\w+)\)", path.read_text()))
    assert referred, "no route refers to a schema: the pattern above no longer matches the code"
    assert referred - {model.__name__ for model in schemas.RESPONSES} == set()


# --- the document as Swagger UI shows it: a title, and every operation in the API's words -----------------


class FakeService:
    """What build_spec reads of a BentoML service: its name, Bento, and the document BentoML generates
    (here one typed API and one health check, with the texts BentoML gives them)."""

    name = "model-server"
    bento = None

    class openapi_spec:  # noqa: N801 (BentoML's attribute)
        @staticmethod
        def asdict() -> dict:
            typed = {"type": "object", "required": ["images", "model"], "properties": {"images": {"type": "array"}, "model": {"type": "string"}}}
            return {
                "openapi": "3.0.2",
                "info": {"title": "model-server", "version": "dev", "description": "The service's docstring.\n\n>>> from serving import codecs"},
                "paths": {
                    "/healthz": {"get": {"tags": ["Infrastructure"], "description": "Health check endpoint. <code>200</code>", "responses": {}}},
                    "/classify": {
                        "post": {
                            "tags": ["Service APIs"],
                            "x-bentoml-name": "classify",
                            "description": "Classify a batch of examples (BentoML's typed API; the generated clients use it).",
                            "requestBody": {"content": {"application/json": {"schema": typed}}},
                            "responses": {},
                        }
                    },
                },
                "components": {"schemas": {}},
            }


def test_the_document_has_a_title_and_every_operation_a_short_summary_in_the_apis_words(served, monkeypatch):
    from serving import openapi
    from serving.openapi import SUMMARY_MAX, TITLE, build_spec

    def card(name, version):  # the fakes' cards, as the model store would give them
        handle = served.registry.model(name).handles.get(version)
        return handle.card if handle else None

    monkeypatch.setattr(openapi, "_card", card)
    spec = build_spec(FakeService(), served.plane.config, served.router)
    assert spec["info"]["title"] == TITLE == "Model server API"
    description = spec["info"]["description"]
    assert "GET /models" in description and '{"error": "..."}' in description and "- 404: unknown model" in description
    assert {t["name"] for t in spec["tags"]} >= {"Models", "Page", "Service APIs", "Infrastructure"}
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items() if method != "parameters"]
    assert len(operations) > 20
    for path, method, op in operations:
        summary, text = op["summary"], op.get("description", "")
        assert summary and len(summary) <= SUMMARY_MAX and not summary.endswith("."), (path, method, summary)
        for shown in (summary, text):  # no doctest lines, source files, RST markup or BentoML's HTML
            assert not re.search(r">>>|\.py\b|``|<code>|docstring", shown), (path, method, shown)
    assert spec["paths"]["/classify"]["post"]["summary"] == "Classify examples with a model (BentoML's client)"
    assert "client.classify(" in spec["paths"]["/classify"]["post"]["description"]
    assert spec["paths"]["/healthz"]["get"]["summary"].startswith("Health check")
    page = spec["paths"]["/"]["get"]
    assert page["summary"] == "The web page: try a model in a browser" and "drift" in page["description"]
    for schema in spec["components"]["schemas"].values():  # the answers' schemas too: `x`, not ``x``
        assert "``" not in json.dumps(schema)
    for where, values in enums(spec):  # JSON Schema: an enum's values should be unique (BYTES is a codec and the classification extension's datatype)
        assert len(values) == len({json.dumps(value) for value in values}), (where, values)


def enums(node, where: str = "") -> list[tuple[str, list]]:
    """Every ``enum`` in a JSON document, with where it is."""
    found: list[tuple[str, list]] = []
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            found.append((where, node["enum"]))
        for key, value in node.items():
            found += enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += enums(value, f"{where}/{index}")
    return found


def test_a_long_summary_keeps_its_first_clause_and_moves_whole_into_the_description():
    from serving.openapi import SUMMARY_MAX, public_text, readable, short_summary

    long = "TF Serving: class probabilities from the latest version of clothes, at most 64 examples (an image file may be sent as b64)."
    assert short_summary(long) == "TF Serving: class probabilities from the latest version of clothes, at most 64 examples"
    assert short_summary("Open Inference Protocol (model repository extension): every served version and its state, with more words.") == (
        "Open Inference Protocol: every served version and its state, with more words"
    )
    assert len(short_summary("word " * 40)) <= SUMMARY_MAX
    spec = {"paths": {"/x": {"post": {"summary": long, "responses": {}}}}, "components": {}}
    readable(spec)
    assert spec["paths"]["/x"]["post"]["summary"] == short_summary(long)
    assert spec["paths"]["/x"]["post"]["description"] == long
    assert public_text("a token is missing (serving/auth.py); carries ``Allow``") == "a token is missing; carries `Allow`"


def test_a_bytes_input_is_documented_as_strings_and_b64_in_words():
    """The schema says strings (what every engine takes); TF Serving's {"b64": ...}, which the JSON codec
    takes too (serving/codecs/tensors.strings), is said in its description: its bytes must be UTF-8 for an
    engine that takes text, which a schema cannot say."""
    from jsonschema import Draft202012Validator

    from models.card import TensorSpec
    from serving.codecs.tensors import json_tensor
    from serving.errors import BadRequest
    from serving.openapi import _value

    value = _value(TensorSpec(name="text", datatype="BYTES", shape=(1,), max_bytes=8))
    schema = Draft202012Validator(value)
    assert schema.is_valid("a review") and not schema.is_valid(3) and not schema.is_valid({"b64": "aGk="})
    assert '{"b64": ...}' in value["description"] and "at most 8 bytes" in value["description"]
    assert json_tensor([{"b64": "aGk="}], "text").tolist() == [b"hi"]
    for refused in ({"b64": 3}, {"b64": "aGk=", "x": 1}, {"text": "a"}):
        with pytest.raises(BadRequest):
            json_tensor([refused], "text")
