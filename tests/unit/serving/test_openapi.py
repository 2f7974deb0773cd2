"""serving/openapi.py: every answer schema a route refers to is among the document's components (a
missing one makes the published document invalid: tests/e2e/test_fuzz.py validates the whole)."""

import re

from serving import schemas
from tests.conftest import ROOT


def test_every_schema_a_route_refers_to_is_a_component():
    referred = set()
    for path in sorted((ROOT / "serving" / "protocols").rglob("*.py")):
        referred |= set(re.findall(r"ref\(schemas\.(\w+)\)", path.read_text()))
    assert referred, "no route refers to a schema: the pattern above no longer matches the code"
    assert referred - {model.__name__ for model in schemas.RESPONSES} == set()
