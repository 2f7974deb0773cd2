"""The router's table lookup finds what a scan of every route's pattern in table order finds, for the
entry's real route tables (serving/app.py) and any path: hypothesis fills the templates' parameters,
adds trailing slashes and junk, and compares."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from serving.app import make_router
from serving.protocols import Router
from tests.unit.serving.conftest import write_config

SEGMENT = st.text(alphabet=st.characters(blacklist_characters="/:", min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)


def scan(router: Router, path: str):
    """The reference: every pattern in table order, the first that matches."""
    for pattern, route in router.routes:
        found = pattern.match(path)
        if found:
            return route, {**route.params, **found.groupdict()}
    return None


def test_every_template_and_junk_resolves_as_a_scan_does(tmp_path):
    config = write_config(tmp_path, {"grey": {"versions": ["v1"]}}, course={"project3": {"model": "grey", "version": "v1"}})
    router = make_router(config)
    templates = [route.path for _, route in router.routes]

    @settings(max_examples=600, deadline=None)
    @given(st.sampled_from(templates), st.lists(SEGMENT, min_size=4, max_size=4), st.booleans(), st.sampled_from(["", "x", "/x", ":x"]))
    def check(template, values, slash, junk):
        filled = iter(values)
        path = re.sub(r"\{\w+\}", lambda _: next(filled), template) + ("/" if slash else "") + junk
        assert router.match(path) == scan(router, path), path

    check()
    for path in ["/", "//", "/models", "/models/", "/v2", "/v2/", "/nope", "/v1/models/a:predict/", "/v1/models/a/versions/1:classify", "/summary/"]:
        assert router.match(path) == scan(router, path), path


def test_every_sample_of_the_exposition_carries_the_replica_label():
    from serving.protocols.prometheus import with_label

    exposition = b'# HELP x_total X.\n# TYPE x_total counter\nx_total{a="1",b="2"} 3.0\ny 2.0\nz{} 1.0\n'
    assert with_label(exposition, "replica", "a-1").split(b"\n") == [
        b"# HELP x_total X.",
        b"# TYPE x_total counter",
        b'x_total{replica="a-1",a="1",b="2"} 3.0',
        b'y{replica="a-1"} 2.0',
        b'z{replica="a-1"} 1.0',
        b"",
    ]
