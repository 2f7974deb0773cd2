import pytest
import yaml

from serving.settings import SettingsError, load_settings


def write(tmp_path, clothes, services=None):
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"services": services or {}, "clothes": clothes}))
    return path


def test_the_shipped_configuration_loads():
    settings = load_settings()
    assert settings.versions == ("v1", "v2")
    assert settings.resolve("stable") in settings.versions
    assert settings.service_options("clothes-v1")["runner_connection"]["max_requests"] >= 10**6
    assert "batching" not in settings.service_options("clothes-v1")
    assert settings.runner_batching["v1"]["max_batch_size"] > 0


def test_resolve_versions_and_aliases(tmp_path):
    settings = load_settings(write(tmp_path, {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}}))
    assert settings.resolve("v2") == "v2" and settings.resolve("stable") == "v1" and settings.resolve("v3") is None
    assert settings.aliases_of("v1") == ["stable"] and settings.default_version == "v1"


def test_runner_batching_from_its_service_block(tmp_path):
    path = write(tmp_path, {"versions": ["v1"]}, {"clothes-v1": {"workers": 2, "batching": {"max_latency_ms": 5}}})
    settings = load_settings(path)
    assert settings.runner_batching["v1"]["max_latency_ms"] == 5
    assert settings.service_options("clothes-v1") == {"workers": 2}


@pytest.mark.parametrize(
    "clothes,message",
    [
        ({"versions": []}, "no version"),
        ({"versions": ["v1"], "aliases": {"stable": "v2"}}, "not served"),
        ({"versions": ["V1/../x"]}, "not a valid"),
        ({"versions": ["v1"], "aliases": {"v1": "v1"}}, "hides"),
        ({"versions": ["v1"], "default_version": "v3"}, "default_version"),
        ({"versions": ["v1"], "strict_readiness": "yes"}, "strict_readiness must be true or false"),
    ],
)
def test_inconsistent_configuration_is_refused(tmp_path, clothes, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(write(tmp_path, clothes))


def test_strict_readiness_is_off_unless_set(tmp_path):
    assert load_settings(write(tmp_path, {"versions": ["v1"]})).strict_readiness is False
    assert load_settings(write(tmp_path, {"versions": ["v1"], "strict_readiness": True})).strict_readiness is True
