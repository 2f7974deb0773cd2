"""config/settings.py: configuration.yaml read and checked; the promotion record's choice; the API token."""

import json

import pytest
import yaml

from config import CONFIG_ENV, Config, ConfigError, DriftThresholds, PromotionPolicy, load_config, runner_name
from config.settings import DEFAULT_PATH, MIN_TOKEN_CHARS

TOKEN = "s3cret-token-0123456789"
ENV = "MODEL_SERVER_TEST_TOKEN"


def write(tmp_path, models=None, **sections):
    """A configuration file of ``models`` (default: clothes v1, v2 with aliases) and other sections."""
    if models is None:
        models = {"clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1", "latest": "v2"}}}
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"models": models, **sections}, sort_keys=False))
    return path


def load(tmp_path, models=None, **sections) -> Config:
    return load_config(write(tmp_path, models, **sections))


# --- the shipped file ---------------------------------------------------------------------------


def test_the_shipped_configuration_loads(monkeypatch):
    """configuration.yaml as shipped: every alias and the course's route resolve to a served version."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    config = load_config()
    assert config.path == DEFAULT_PATH.resolve()
    served = set(config.served())
    assert {name for name, _ in served} == set(config.models) and len(served) >= 2
    for name, model in config.models.items():
        for alias in model.aliases:
            assert (name, model.resolve(alias)) in served, (name, alias)
        assert model.promotion == PromotionPolicy(alias="stable", min_improvement=0.002, max_class_regression=0.02, max_slice_regression=0.02)
    project3 = config.course.project3
    assert (project3.model, config.models[project3.model].resolve(project3.version)) in served
    for name, version in served:
        options = config.runner(name, version).bentoml_options()
        assert options["runner_connection"]["max_requests"] >= 10**6 and "batching" not in options
        assert config.runner(name, version).engine == "onnxruntime"
    assert config.security.api_token is None and config.strict_readiness is False
    assert config.live.admin_without_token is False
    assert config.record() is not None and config.record().path == DEFAULT_PATH.parent / "deploy" / "promotions.json"


def test_the_environment_names_another_file(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(write(tmp_path, {"shoes": {"versions": ["a1"]}})))
    assert load_config().served() == [("shoes", "a1")]


def test_several_models_are_served_in_file_order(tmp_path):
    config = load(tmp_path, {"zeta": {"versions": ["v2", "v1"]}, "alpha": {"versions": ["x"]}})
    assert config.served() == [("zeta", "v2"), ("zeta", "v1"), ("alpha", "x")]
    assert runner_name("zeta", "v2") == "zeta-v2"


# --- versions and aliases -----------------------------------------------------------------------


def test_versions_list_shorthand_and_mapping_are_the_same(tmp_path):
    listed = load(tmp_path, {"clothes": {"versions": ["v1", "v2"]}})
    (tmp_path / "configuration.yaml").write_text("models:\n  clothes:\n    versions:\n      v1:\n      v2: {}\n")
    mapped = load_config(tmp_path / "configuration.yaml")
    assert listed.models["clothes"].versions == mapped.models["clothes"].versions == {"v1": {}, "v2": {}}


def test_resolve_versions_and_aliases(tmp_path):
    clothes = load(tmp_path).models["clothes"]
    assert clothes.resolve("v2") == "v2" and clothes.resolve("stable") == "v1" and clothes.resolve("v3") is None
    assert clothes.aliases_of("v1") == ["stable"] and clothes.aliases_of("v2") == ["latest"]
    assert clothes.default == "v1"  # no default_version: the first version


def test_default_version_may_be_an_alias(tmp_path):
    clothes = load(tmp_path, {"clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v2"}, "default_version": "stable"}}).models["clothes"]
    assert clothes.default == "stable" and clothes.resolve(clothes.default) == "v2"


@pytest.mark.parametrize(
    "model,message",
    [
        ({"versions": []}, "at least 1 item"),
        ({}, "versions: Field required"),
        ({"versions": ["v1"], "aliases": {"stable": "v2"}}, "alias 'stable' points to 'v2', which is not a served version"),
        ({"versions": ["V1/../x"]}, "versions"),
        ({"versions": ["v1"], "aliases": {"Stable!": "v1"}}, "aliases"),
        ({"versions": ["v1"], "aliases": {"v1": "v1"}}, "hides the version"),
        ({"versions": ["v1"], "default_version": "v3"}, "default_version 'v3' is neither"),
        ({"versions": ["v1"], "strict_readiness": True}, "strict_readiness: Extra inputs are not permitted"),
        ({"versions": ["v1"], "promotion": {"alias": "stable", "record": "x.json"}}, "record: Extra inputs"),
    ],
)
def test_inconsistent_models_are_refused(tmp_path, model, message):
    with pytest.raises(ConfigError, match=message) as error:
        load(tmp_path, {"clothes": model})
    assert str(error.value).startswith(str(tmp_path / "configuration.yaml"))


def test_model_names_follow_the_tag_alphabet(tmp_path):
    with pytest.raises(ConfigError, match="models"):
        load(tmp_path, {"Clothes": {"versions": ["v1"]}})


# --- runner settings ----------------------------------------------------------------------------


def test_a_version_overrides_the_shared_runner_settings_key_by_key(tmp_path):
    runners = {"workers": 1, "traffic": {"timeout": 30, "max_concurrency": 50}, "batching": {"enabled": False, "max_batch_size": 64}}
    versions = {"v1": {}, "v2": {"workers": 3, "traffic": {"timeout": 5}, "batching": {"enabled": True}}}
    config = load(tmp_path, {"clothes": {"versions": versions}}, runners=runners)
    v1, v2 = config.runner("clothes", "v1"), config.runner("clothes", "v2")
    assert v1.workers == 1 and v1.batching.enabled is False and v1.batching.max_batch_size == 64
    assert v1.bentoml_options() == {"workers": 1, "traffic": {"timeout": 30, "max_concurrency": 50}}
    assert v2.workers == 3 and v2.batching.enabled is True and v2.batching.max_batch_size == 64  # merged, not replaced
    assert v2.bentoml_options() == {"workers": 3, "traffic": {"timeout": 5, "max_concurrency": 50}}
    assert config.runners == runners  # the shared block is not changed by a merge


def test_placement_is_in_process_unless_the_runners_or_a_version_say_process(tmp_path):
    config = load(tmp_path, {"clothes": {"versions": {"v1": {}, "v2": {"placement": "process", "workers": 2}}}})
    v1, v2 = config.runner("clothes", "v1"), config.runner("clothes", "v2")
    assert (v1.placement, v2.placement) == ("inprocess", "process")
    assert v2.bentoml_options() == {"workers": 2}  # placement is ours, not a BentoML option
    assert load(tmp_path, runners={"placement": "process"}).runner("clothes", "v1").placement == "process"
    with pytest.raises(ConfigError, match="clothes:v1.*placement: Input should be 'inprocess' or 'process'"):
        load(tmp_path, {"clothes": {"versions": {"v1": {"placement": "in-process"}}}})


def test_runner_defaults(tmp_path):
    runner = load(tmp_path).runner("clothes", "v1")
    assert runner.workers == 1 and runner.batching.enabled is False and runner.batching.max_batch_size == 1024
    assert runner.bentoml_options() == {"workers": 1}


@pytest.mark.parametrize(
    "versions,runners,message",
    [
        ({"v1": {"batching": {"enabled": True, "bogus": 1}}}, {}, "bogus: Extra inputs are not permitted"),
        ({"v1": {"workers": 0}}, {}, "workers: Input should be greater than 0"),
        ({"v1": ["x"]}, {}, "valid dictionary"),
        ({"v1": {}}, {"batching": {"max_batch_size": 0}}, "max_batch_size: Input should be greater than 0"),
    ],
)
def test_bad_runner_settings_are_refused(tmp_path, versions, runners, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, {"clothes": {"versions": versions}}, runners=runners)


def test_a_bad_runner_override_names_its_model_and_version(tmp_path):
    models = {"clothes": {"versions": ["v1"]}, "shoes": {"versions": {"v1": {}, "v7": {"workers": 0}}}}
    with pytest.raises(ConfigError) as error:
        load(tmp_path, models)
    assert "shoes" in str(error.value) and "v7" in str(error.value), str(error.value)


# --- other sections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sections,message",
    [
        ({"clothes": {"versions": ["v1"]}}, "clothes: Extra inputs are not permitted"),  # the old layout
        ({"services": {}}, "services: Extra inputs"),
        ({"limits": {"max_body_bytes": 10, "max_images": 3}}, "limits.max_images: Extra inputs"),
        ({"monitoring": {"windows": 10}}, "monitoring.windows: Extra inputs"),
        ({"security": {"token_env": "X"}}, "security.token_env: Extra inputs"),
        ({"course": {"project4": {}}}, "course.project4: Extra inputs"),
        ({"limits": {"max_body_bytes": 0}}, "limits.max_body_bytes"),
        ({"monitoring": {"log_sample_rate": 1.5}}, "monitoring.log_sample_rate"),
        ({"monitoring": {"window": 100, "min_samples": 200}}, r"window \(100\) must be at least min_samples \(200\)"),
        ({"strict_readiness": "maybe"}, "strict_readiness: Input should be a valid boolean"),
        ({"course": {"project3": {"model": "shoes"}}}, "course.project3 names shoes:stable, which is not served"),
        ({"course": {"project3": {"model": "clothes", "version": "v9"}}}, "course.project3 names clothes:v9"),
    ],
)
def test_unknown_keys_and_bad_values_are_refused(tmp_path, sections, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, **sections)


def test_course_routes_name_a_served_model(tmp_path):
    config = load(tmp_path, course={"project3": {"model": "clothes"}})
    assert config.course.project3.model == "clothes" and config.course.project3.version == "stable"


def test_monitoring_thresholds_and_limits(tmp_path):
    config = load(tmp_path, monitoring={"p_value": 0.01, "psi": 0.3, "min_samples": 50, "window": 60}, limits={"max_batch_images": 7})
    assert config.monitoring.thresholds == DriftThresholds(p_value=0.01, psi=0.3, min_samples=50)
    assert config.limits.max_batch_images == 7 and config.limits.max_body_bytes == 10 * 1024 * 1024


def test_entry_options_resolve_files_against_the_configuration(tmp_path):
    entry = {"workers": 2, "monitoring": {"enabled": True, "options": {"log_path": "monitoring", "log_config_file": "logging.yaml"}}}
    config = load(tmp_path, entry=entry)
    options = config.entry_options()
    assert options["monitoring"]["options"]["log_config_file"] == str((tmp_path / "logging.yaml").resolve())
    assert options["monitoring"]["options"]["log_path"] == "monitoring" and options["workers"] == 2
    assert config.entry["monitoring"]["options"]["log_config_file"] == "logging.yaml"  # a copy was changed


@pytest.mark.parametrize("text,message", [(None, "cannot read configuration"), ("models: [", "cannot read configuration"), ("- a\n- b\n", "expected a mapping")])
def test_unreadable_files_are_configuration_errors(tmp_path, text, message):
    path = tmp_path / "configuration.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


TOP_LEVEL_TWICE = """\
models:
  clothes:
    versions: [v1]
limits:
  max_body_bytes: 1000
models:
  shoes:
    versions: [a1]
"""

NESTED_TWICE = """\
models:
  clothes:
    versions:
      v1: {}
      v2:
        workers: 2
      v1:
        workers: 3
    aliases:
      stable: v1
"""


@pytest.mark.parametrize(
    "text,key,lines",
    [
        (TOP_LEVEL_TWICE, "models", (1, 6)),
        (NESTED_TWICE, "v1", (4, 7)),
        ("models:\n  clothes:\n    versions: [v1]\n    aliases: {stable: v1, stable: v1}\n", "stable", (4, 4)),
        ("runners:\n  traffic:\n    timeout: 5\n    timeout: 50\nmodels:\n  clothes:\n    versions: [v1]\n", "timeout", (3, 4)),
    ],
    ids=["top-level", "nested-versions", "flow-mapping", "runner-option"],
)
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, text, key, lines):
    """PyYAML keeps the last of two equal keys silently; the file is refused instead, at any depth."""
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: duplicate key {key!r} at lines {lines[0]} and {lines[1]}"


def test_equal_keys_in_different_mappings_and_merged_keys_are_fine(tmp_path):
    path = tmp_path / "configuration.yaml"
    path.write_text(
        "runners: &shared\n  workers: 1\n  traffic: {timeout: 5}\n"
        "models:\n  clothes:\n    versions:\n      v1: {workers: 1}\n      v2:\n        <<: *shared\n        workers: 2\n"
        "  shoes:\n    versions:\n      v1: {workers: 1}\n"
    )
    config = load_config(path)
    assert config.runner("clothes", "v2").workers == 2 and config.runner("shoes", "v1").workers == 1


def test_the_project_reads_its_yaml_files_with_the_same_loader():
    """Every YAML file a non-test module of the project parses goes through config.settings.load_yaml."""
    root = DEFAULT_PATH.parent
    offenders = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in sorted(root.glob("**/*.py"))
        if not path.relative_to(root).parts[0].startswith((".", "tests"))
        for line in path.read_text().splitlines()
        if "yaml.safe_load" in line or ("yaml.load(" in line and "UniqueKeyLoader" not in line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "models",
    [{"clothes": ["v1", "v2"]}, ["clothes"], {"clothes": {"versions": ["v1"], "aliases": None, "promotion": {}}}, {"clothes": {"versions": ["v1"], "promotion": True}}],
    ids=["model-as-list", "models-as-list", "aliases-null", "promotion-true"],
)
def test_malformed_models_are_configuration_errors_with_a_promotion_record(tmp_path, models):
    """Loaded or refused with a ConfigError naming the problem; never another exception."""
    (tmp_path / "promotions.json").write_text(json.dumps({"models": {"clothes": {"stable": "v1", "decisions": []}}}))
    try:
        load(tmp_path, models, promotion_record="promotions.json")
    except ConfigError:
        pass


# --- the promotion record -----------------------------------------------------------------------


def record(tmp_path, models: dict) -> str:
    (tmp_path / "promotions.json").write_text(json.dumps({"models": models}))
    return "promotions.json"


def test_the_promotion_record_overrides_the_alias_it_moves(tmp_path):
    models = {
        "clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1", "latest": "v2"}, "promotion": {"alias": "stable"}},
        "shoes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}},  # no gate: the record does not apply
    }
    path = record(tmp_path, {"clothes": {"stable": "v2", "decisions": []}, "shoes": {"stable": "v2", "decisions": []}})
    config = load(tmp_path, models, promotion_record=path)
    assert config.models["clothes"].resolve("stable") == "v2" and config.models["clothes"].resolve("latest") == "v2"
    assert config.models["shoes"].resolve("stable") == "v1"
    assert config.record().stable("clothes") == "v2"


def test_the_record_may_move_another_alias_and_create_it(tmp_path):
    models = {"clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}, "promotion": {"alias": "production"}}}
    config = load(tmp_path, models, promotion_record=record(tmp_path, {"clothes": {"stable": "v2", "decisions": []}}))
    assert config.models["clothes"].resolve("production") == "v2" and config.models["clothes"].resolve("stable") == "v1"


def test_without_a_decision_the_file_decides(tmp_path):
    models = {"clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}, "promotion": {}}}
    assert load(tmp_path, models, promotion_record=record(tmp_path, {})).models["clothes"].resolve("stable") == "v1"
    assert load(tmp_path, models, promotion_record="missing.json").models["clothes"].resolve("stable") == "v1"
    assert load(tmp_path, models).record() is None


def test_a_record_naming_an_unserved_version_is_a_configuration_error(tmp_path):
    models = {"clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}, "promotion": {}}}
    with pytest.raises(ConfigError, match="'v9'.* not a served version"):
        load(tmp_path, models, promotion_record=record(tmp_path, {"clothes": {"stable": "v9", "decisions": []}}))


def test_that_error_names_the_promotion_record(tmp_path):
    models = {"clothes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}, "promotion": {}}}
    with pytest.raises(ConfigError, match="promotion record|promotions.json"):
        load(tmp_path, models, promotion_record=record(tmp_path, {"clothes": {"stable": "v9", "decisions": []}}))


def test_a_damaged_promotion_record_is_a_configuration_error(tmp_path):
    (tmp_path / "promotions.json").write_text('{"models": {"clothes": ')
    models = {"clothes": {"versions": ["v1"], "promotion": {}}}
    with pytest.raises(ConfigError, match="promotions.json"):
        load(tmp_path, models, promotion_record="promotions.json")


# --- security: the API token ----------------------------------------------------------------------


def test_no_token_unless_named(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, TOKEN)
    security = load(tmp_path).security
    assert security.api_token is None and security.api_token_env is None and security.protect_metrics is False


def test_the_token_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, f"  {TOKEN}\n")  # as a mounted secret file often has it
    security = load(tmp_path, security={"api_token_env": ENV, "protect_metrics": True}).security
    assert security.api_token == TOKEN and security.api_token_env == ENV and security.protect_metrics is True
    assert TOKEN not in repr(security) and TOKEN not in repr(load(tmp_path, security={"api_token_env": ENV}))
    assert "api_token" not in security.model_dump()


@pytest.mark.parametrize(
    "security,value,message",
    [
        ({"api_token_env": ENV}, None, f"security.api_token_env names {ENV}, but {ENV} is not set"),
        ({"api_token_env": ENV}, "   ", f"security.api_token_env names {ENV}, but {ENV} is not set"),
        ({"api_token_env": ENV}, "x" * (MIN_TOKEN_CHARS - 1), f"{ENV} is shorter than {MIN_TOKEN_CHARS} characters"),
        ({"api_token": TOKEN}, None, "the token must not be in the file"),
        ({"api_token": TOKEN, "api_token_env": ENV}, TOKEN, "the token must not be in the file"),
        ({"protect_metrics": "perhaps"}, None, "security.protect_metrics: Input should be a valid boolean"),
    ],
)
def test_misconfigured_security_stops_the_service(tmp_path, monkeypatch, security, value, message):
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(ConfigError, match="security") as error:
        load(tmp_path, security=security)
    assert message in str(error.value)
    assert TOKEN not in str(error.value)


def test_a_token_of_exactly_the_minimum_length_is_taken(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "y" * MIN_TOKEN_CHARS)
    assert load(tmp_path, security={"api_token_env": ENV}).security.api_token == "y" * MIN_TOKEN_CHARS


@pytest.mark.parametrize(
    "state,message",
    [
        ({"backend": "file"}, "backend file needs path"),
        ({"backend": "redis"}, "backend redis needs url"),
        ({"backend": "redis", "url": "http://localhost:6379"}, "expected redis://"),
        ({"backend": "etcd"}, "state.backend"),
        ({"replica": "a b"}, "state.replica"),
        ({"poll_seconds": 0}, "state.poll_seconds"),
        ({"backend": "redis", "url": "redis://x", "keys": "y"}, "state.keys"),
    ],
)
def test_a_state_section_with_mistakes_is_refused_naming_the_key(tmp_path, monkeypatch, state, message):
    monkeypatch.delenv("MODEL_SERVER_STATE_URL", raising=False)
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, state=state)


def test_the_state_defaults_to_this_server_alone_and_paths_resolve_against_the_file(tmp_path):
    config = load(tmp_path)
    assert config.state.backend == "local" and config.state_file() is None and config.repository_dir() is None
    config = load(tmp_path, state={"backend": "file", "path": "state/desired.json"}, repository={"path": "shared"})
    assert config.state_file() == tmp_path / "state" / "desired.json" and config.repository_dir() == tmp_path / "shared"


def test_the_environment_gives_the_redis_url_and_the_replica_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_SERVER_STATE_URL", "redis://:pw@redis:6379/1")
    monkeypatch.setenv("MODEL_SERVER_REPLICA", "model-server-7d9f-abc12")
    config = load(tmp_path, state={"backend": "redis"})
    assert config.state.url == "redis://:pw@redis:6379/1" and config.state.replica == "model-server-7d9f-abc12"
    assert "pw" not in repr(config.state)  # the URL may hold a password: kept out of reprs and logs
    monkeypatch.setenv("MODEL_SERVER_REPLICA", "not a name")
    with pytest.raises(ConfigError, match="MODEL_SERVER_REPLICA"):
        load(tmp_path, state={"backend": "redis"})


def test_the_environment_makes_a_fleet_of_the_shipped_file(tmp_path, monkeypatch):
    """One image, one configuration.yaml: a deployment turns it into a fleet replica by its environment."""
    monkeypatch.setenv("MODEL_SERVER_STATE_BACKEND", "redis")
    monkeypatch.setenv("MODEL_SERVER_STATE_URL", "redis://model-server-redis:6379/0")
    monkeypatch.setenv("MODEL_SERVER_REPOSITORY", "/models-repository")
    config = load(tmp_path)
    assert (config.state.backend, config.state.url, config.repository_dir()) == ("redis", "redis://model-server-redis:6379/0", tmp_path / "/models-repository")
    monkeypatch.delenv("MODEL_SERVER_STATE_URL")
    with pytest.raises(ConfigError, match="MODEL_SERVER_STATE_BACKEND.*backend redis needs url"):
        load(tmp_path)


# --- pipelines ----------------------------------------------------------------------------------


def test_a_pipeline_names_served_steps_and_says_how_it_combines(tmp_path):
    cascade = {"combine": "cascade", "steps": ["clothes:stable", "clothes:v2"], "threshold": 0.9}
    config = load(tmp_path, pipelines={"clothes-cascade": cascade, "clothes-ensemble": {"combine": "ensemble", "steps": ["clothes:v1", "clothes:v2"]}})
    assert config.pipelines["clothes-cascade"].version == "v1" and config.pipelines["clothes-ensemble"].weights is None


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ({"combine": "cascade", "steps": ["clothes:v1", "clothes:v2"]}, "needs its threshold"),
        ({"combine": "ensemble", "steps": ["clothes:v1", "clothes:v2"], "threshold": 0.5}, "threshold applies to a cascade"),
        ({"combine": "ensemble", "steps": ["clothes:v1", "clothes:v2"], "weights": [1]}, "one per step"),
        ({"combine": "ensemble", "steps": ["clothes:v1", "clothes:v9"]}, "step clothes:v9 is not a served version or alias"),
        ({"combine": "ensemble", "steps": ["clothes:v1"]}, "at least 2"),
        ({"combine": "vote", "steps": ["clothes:v1", "clothes:v2"]}, "ensemble"),
    ],
)
def test_a_pipeline_with_mistakes_is_refused_naming_them(tmp_path, pipeline, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, pipelines={"mix": pipeline})
    with pytest.raises(ConfigError, match="a model has that name"):
        load(tmp_path, pipelines={"clothes": {"combine": "ensemble", "steps": ["clothes:v1", "clothes:v2"]}})
