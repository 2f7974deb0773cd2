"""The schema of ``configuration.yaml`` (pydantic: every key checked, unknown keys refused, defaults here).

    entry:      the entry service's ``@bentoml.service`` options (BentoML's own schema)
    runners:    every runner's settings, written once: BentoML's options plus ``batching``
    models:     the served models: versions (each may override runner settings), aliases,
                default version, promotion policy
    course:     which model answers the course's Project 3 routes (``/summary``, ``/inference``)
    promotion_record, limits, monitoring, security, strict_readiness: shared by every model
    feedback:   ground truth joined to answered predictions: live accuracy per version, alias and slice
    state:      where the desired state lives (this server alone, a durable file, or Redis for a fleet)
    repository: a shared directory of published versions every replica fetches from

Adding a model or a version is a few lines under ``models``; nothing else names it.
"""

from __future__ import annotations

import copy
import enum
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, ValidationError, field_validator, model_validator

from config.record import PromotionRecord
from models import engines
from models.card import Name

CONFIG_ENV = "MODEL_SERVER_CONFIG"
BENTOML_DEFAULT_TIMEOUT = 60.0  # traffic.timeout in BentoML's default configuration
GRPC_PORT_ENV = "MODEL_SERVER_GRPC_PORT"  # overrides grpc.port
STATE_BACKEND_ENV = "MODEL_SERVER_STATE_BACKEND"  # overrides state.backend: one image, one configuration, a fleet by its environment
STATE_URL_ENV = "MODEL_SERVER_STATE_URL"  # overrides state.url (a Redis URL may carry a password: keep it out of the file)
REPLICA_ENV = "MODEL_SERVER_REPLICA"  # overrides state.replica (Kubernetes: the pod's name)
REPOSITORY_ENV = "MODEL_SERVER_REPOSITORY"  # overrides repository.path (where the shared volume is mounted)
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "configuration.yaml"
MIN_TOKEN_CHARS = 16  # a shorter API token is too easy to guess


class ConfigError(ValueError):
    """The configuration file is missing or inconsistent."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Batching(_Section):
    enabled: bool = False  # BentoML's own dispatcher inside the runner, on top of the entry's grouping
    max_batch_size: PositiveInt = 1024  # at most this many examples per call into the runner
    max_latency_ms: PositiveInt = 10_000  # the dispatcher's budget when enabled


class Placement(enum.StrEnum):
    """Where a version's engine runs (docs/architecture.md: the trade-offs, measured)."""

    INPROCESS = "inprocess"  # inside every entry worker, as Triton's instance groups: no hop; a crash takes the worker down
    PROCESS = "process"  # its own runner process: a hop per call; a crash takes down that version only


class RunnerSettings(BaseModel):
    """One runner's settings: ours (``placement``, ``batching``, ``engine``, ``threads``) and BentoML's
    ``@bentoml.service`` options (the rest, for ``process`` placement)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    placement: Placement = Placement.INPROCESS
    batching: Batching = Batching()
    workers: PositiveInt = 1  # runner processes (process placement); in-process engines have one per entry worker
    # a registered engine (models/engines/): onnxruntime, the version's verified ONNX export (TensorFlow
    # when it has none); tensorflow, its Keras model
    engine: str = engines.DEFAULT
    threads: PositiveInt = 1  # threads of each runner worker's engine: several runners on 2 cores must not oversubscribe them

    @field_validator("engine")
    @classmethod
    def _registered(cls, value: str) -> str:
        engines.get(value)  # ValueError naming the known engines
        return value

    def bentoml_options(self) -> dict:
        return {"workers": self.workers, **(self.model_extra or {})}


class PromotionPolicy(_Section):
    alias: Name = "stable"  # the alias the gate moves
    min_improvement: float = 0.002
    max_class_regression: float = 0.02
    max_slice_regression: float = 0.02


Weights = dict[Name, Annotated[int, Field(ge=0, le=100)]]  # version -> share of the alias's traffic


class VersionPolicy(_Section):
    """Which stored versions a watched model serves, as TF Serving's version policy has them (one of)."""

    latest: PositiveInt | None = None  # the newest N versions in the store
    all: bool = False  # every version in the store
    specific: list[Name] | None = None  # these versions

    @model_validator(mode="after")
    def _one(self):
        if sum([self.latest is not None, self.all, self.specific is not None]) != 1:
            raise ValueError("a version policy is one of latest: N, all: true, specific: [versions]")
        return self


class Watch(_Section):
    policy: VersionPolicy
    poll_seconds: PositiveFloat = 10.0


class OodSettings(_Section):
    """The model's out-of-distribution score (lifecycle/ood.py: measured by bench/ood.py, docs/lifecycle.md)."""

    enabled: bool = True  # every answer's predictions carry ood_score
    score: str = "pixel_distance"  # a score of lifecycle/ood.py's SCORES
    abstain_above: PositiveFloat | None = None  # an example scoring past this is answered with an abstention, not a label

    @field_validator("score")
    @classmethod
    def _known(cls, value: str) -> str:
        from lifecycle.ood import SCORES

        if value not in SCORES:
            raise ValueError(f"unknown score {value!r}; scores: {', '.join(SCORES)}")
        return value


class ModelSettings(_Section):
    versions: dict[Name, dict[str, Any]] = Field(min_length=1)  # version -> runner settings it overrides
    # alias -> a version, or a weighted split of versions: {stable: v1} or {stable: {v1: 90, v2: 10}}
    aliases: dict[Name, Name | Weights] = {}
    watch: Watch | None = None  # load and unload stored versions by a policy while serving
    default_version: Name | None = None  # the typed APIs' default; None: the first version
    promotion: PromotionPolicy | None = None
    ood: OodSettings = OodSettings()

    @field_validator("versions", mode="before")
    @classmethod
    def _list_shorthand(cls, value):
        if isinstance(value, list):  # versions: [v1, v2]
            return {version: {} for version in value}
        return {version: overrides or {} for version, overrides in (value or {}).items()}

    @model_validator(mode="after")
    def _aliases(self):
        for alias, target in self.aliases.items():
            if alias in self.versions:
                raise ValueError(f"alias {alias!r} hides the version of the same name")
            for version in [target] if isinstance(target, str) else target:
                if version not in self.versions:
                    raise ValueError(f"alias {alias!r} points to {version!r}, which is not a served version")
            if isinstance(target, dict) and sum(target.values()) <= 0:
                raise ValueError(f"alias {alias!r}: the weights of its split must add up to more than 0")
        if self.default_version and self.resolve(self.default_version) is None:
            raise ValueError(f"default_version {self.default_version!r} is neither a served version nor an alias")
        return self

    @property
    def default(self) -> str:
        return self.default_version or next(iter(self.versions))

    def resolve(self, version_or_alias: str) -> str | None:
        """A served version for a version or alias (a split: its heaviest version), or None."""
        version = self.aliases.get(version_or_alias, version_or_alias)
        if isinstance(version, dict):
            version = max(version, key=version.__getitem__)
        return version if version in self.versions else None

    def aliases_of(self, version: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if target == version or (isinstance(target, dict) and version in target))


# Where a graph step's input comes from: the pipeline's own input ``inputs.<name>``, or an earlier step's output ``<step number>.<output>``.
SOURCE = re.compile(r"^(inputs|[1-9][0-9]?)\.([A-Za-z_][A-Za-z0-9_.:/-]{0,63})$")


class PipelineSettings(_Section):
    """A model composed of served versions (serving/pipelines.py): ``ensemble`` averages their class
    probabilities (by ``weights``); ``cascade`` answers each example with the first step whose top
    probability reaches ``threshold`` and sends the rest on; ``graph`` feeds outputs of steps to inputs
    of later steps by name (``wiring``), and answers with the last step's outputs."""

    combine: Literal["ensemble", "cascade", "graph"]
    steps: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*$")]] = Field(min_length=2, max_length=8)  # model:version or model:alias
    weights: list[PositiveFloat] | None = None  # ensemble: one per step (default: equal)
    threshold: float | None = Field(None, gt=0, le=1)  # cascade: the top probability that lets a step answer
    # graph: per step, its inputs' sources ({input name: "inputs.<name>" or "<earlier step number>.<output>"});
    # an input not wired takes the latest earlier step's output of its name, else the pipeline's input of its name.
    wiring: list[dict[str, str]] | None = None
    version: Name = "v1"  # the pipeline's one version, as clients address it

    @model_validator(mode="after")
    def _combine(self):
        if self.combine == "cascade" and self.threshold is None:
            raise ValueError("a cascade needs its threshold (the top probability that lets a step answer)")
        if self.combine != "cascade" and self.threshold is not None:
            raise ValueError(f"threshold applies to a cascade; {'an ensemble averages every step' if self.combine == 'ensemble' else 'a graph runs every step'}")
        if self.weights is not None and (self.combine != "ensemble" or len(self.weights) != len(self.steps)):
            raise ValueError("weights: one per step, for an ensemble")
        if self.wiring is not None:
            if self.combine != "graph" or len(self.wiring) != len(self.steps):
                raise ValueError("wiring: one mapping per step (maybe empty), for a graph")
            for number, sources in enumerate(self.wiring, start=1):
                for target, source in sources.items():
                    found = SOURCE.fullmatch(source)
                    if found is None:
                        raise ValueError(f"wiring of step {number}: {target}: {source!r} is not 'inputs.<name>' or '<step number>.<output>'")
                    if found.group(1) != "inputs" and int(found.group(1)) >= number:
                        raise ValueError(f"wiring of step {number}: {target}: {source!r} is not an earlier step's output (steps run in order)")
        return self


class CourseRoutes(_Section):
    """The model behind the course's Project 3 routes, ``GET /summary`` and ``POST /inference``."""

    model: Name
    version: Name = "stable"


class Course(_Section):
    project3: CourseRoutes | None = None


class Live(_Section):
    """Versions loaded and unloaded while serving (serving/live.py)."""

    spare_runners: int = Field(1, ge=0)  # empty runners kept ready to load a version into, beside the configured versions'
    load_timeout_seconds: PositiveFloat = 180  # a load not finished by then has failed (a hung runner is restarted)
    drain_timeout_seconds: PositiveFloat = 30  # an unloaded version's requests in flight may take this long
    admin_without_token: bool = False  # load, unload, traffic and promotion without an API token (see security)
    traffic_key_header: str = "X-Traffic-Key"  # a caller's key: the same key gets the same version of a split alias
    shadow_max_in_flight: PositiveInt = 16  # shadow requests at once per model; more are skipped (never queued)


class StateBackendKind(enum.StrEnum):
    """Where the desired state lives (serving/fleet/backends/)."""

    LOCAL = "local"  # this server's runtime directory: a fresh start serves configuration.yaml again (one machine)
    FILE = "file"  # a durable file (``path``): a restart serves the last desired state (one machine, or a shared disk)
    REDIS = "redis"  # a Redis server (``url``): a fleet of replicas follows one desired state


class State(_Section):
    """The desired state every replica follows: versions, aliases, splits, shadows, promotions (serving/fleet/)."""

    backend: StateBackendKind = StateBackendKind.LOCAL
    path: str | None = None  # file: the state file (relative to this file)
    url: str | None = Field(None, repr=False)  # redis: redis://host:port/db (MODEL_SERVER_STATE_URL overrides it)
    key: Name = "model-server"  # redis: the prefix of this fleet's keys (one fleet per prefix)
    replica: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # this replica's name; default: the host's name
    poll_seconds: PositiveFloat = 2.0  # changes arrive at once (pub/sub, file watch); this poll is the safety net
    report_seconds: PositiveFloat = 2.0  # how often a replica reports what it serves (GET /fleet); gone after 3 missed reports
    timeout_seconds: PositiveFloat = 2.0  # a backend call not answered by then: the backend is unreachable (admin calls get 503)

    @model_validator(mode="after")
    def _backend(self):
        if self.backend == StateBackendKind.FILE and not self.path:
            raise ValueError("backend file needs path: the state file")
        if self.backend == StateBackendKind.REDIS and not (self.url or os.environ.get(STATE_URL_ENV)):
            raise ValueError(f"backend redis needs url (redis://host:port/db) or {STATE_URL_ENV}")
        if self.url and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("url: expected redis://host:port/db, rediss://... or unix://...")
        return self


class Repository(_Section):
    """Versions published once where every replica fetches them (serving/fleet/repository.py)."""

    path: str | None = None  # a shared directory (volume): <model>/<version>.bentomodel with its .sha256; relative to this file


class Limits(_Section):
    max_body_bytes: PositiveInt = 10 * 1024 * 1024  # larger bodies get 413
    max_batch_images: PositiveInt = 1024  # examples per request; more get 413
    max_queue_images: PositiveInt = 8192  # examples waiting per version; more get 503 + Retry-After
    max_requests_in_flight: PositiveInt = 256  # per entry worker; more get 503 + Retry-After
    body_timeout_seconds: PositiveFloat = 10  # a body still arriving this long after the request began gets 408


class Grpc(_Section):
    """The gRPC services in the entry process (serving/protocols/grpc/): v2 inference, TF Serving, health."""

    enabled: bool = True
    host: str = "0.0.0.0"  # the address to listen on
    port: int = Field(8001, ge=1, le=65535)  # Triton's and KServe's gRPC port; TF Serving uses 8500
    grace_seconds: PositiveFloat = 10  # on a graceful stop, calls in flight may finish for this long


class DriftThresholds(_Section):
    p_value: float = 0.001  # a KS or chi-square test below this is drift
    psi: float = 0.2  # a population stability index above this is drift (0.1 moderate, 0.25 major)
    min_samples: PositiveInt = 200  # below this many predictions no verdict is given


class Monitoring(_Section):
    enabled: bool = True  # false: Prometheus counters only, no drift window or data log
    window: PositiveInt = 1000  # predictions per version in the rolling drift window
    min_samples: PositiveInt = 200
    p_value: float = 0.001
    psi: float = 0.2
    log_sample_rate: float = Field(0.01, ge=0, le=1)  # share of predictions written to bentoml.monitor's data log
    log_max_per_second: int = Field(10, ge=0)  # and at most this many per second and entry worker
    refresh_seconds: NonNegativeFloat = 5.0  # how often the drift gauges are recomputed

    @model_validator(mode="after")
    def _window(self):
        if self.window < max(self.min_samples, 2):
            raise ValueError(f"window ({self.window}) must be at least min_samples ({self.min_samples}) and 2")
        return self

    @property
    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(p_value=self.p_value, psi=self.psi, min_samples=self.min_samples)


class FeedbackSettings(_Section):
    """Ground truth joined to answered predictions (serving/feedback.py), for live accuracy."""

    enabled: bool = True  # false: predictions are not recorded, and feedback is refused (404)
    window_seconds: PositiveFloat = 3600  # feedback may name a prediction this old; outcomes older are dropped
    max_predictions: PositiveInt = 100_000  # examples each entry worker holds for the join (~30 bytes each)
    max_outcomes: PositiveInt = 200_000  # joined examples kept per replica (SQLite in the runtime directory)
    max_items: PositiveInt = 10_000  # labels per feedback call; more get 413
    join_seconds: PositiveFloat = 0.5  # how often each worker joins new feedback (a feedback call waits at most a few of these)
    series_seconds: PositiveFloat = 60  # the live accuracy's time series: one point per this many seconds
    label_header: str = "X-Label"  # a request's own ground truth: one label per example, comma-separated
    slice_header: str = "X-Slice"  # a request's slice (a name the client chooses): live accuracy per slice


class Security(_Section):
    api_token_env: str | None = None  # the environment variable holding the token; None: no token
    protect_metrics: bool = False  # true: /metrics needs the token too
    api_token: str | None = Field(None, repr=False, exclude=True)  # read from api_token_env at load, never from the file


class Config(_Section):
    path: Path
    entry: dict[str, Any] = {}
    runners: dict[str, Any] = {}
    models: dict[Name, ModelSettings] = Field(min_length=1)
    pipelines: dict[Name, PipelineSettings] = {}
    course: Course = Course()
    live: Live = Live()
    promotion_record: str | None = None
    pipeline_metrics: str | None = None  # the pipelines' measured metrics (python -m bench.pipelines writes them), relative to this file
    limits: Limits = Limits()
    grpc: Grpc = Grpc()
    monitoring: Monitoring = Monitoring()
    feedback: FeedbackSettings = FeedbackSettings()
    security: Security = Security()
    state: State = State()
    repository: Repository = Repository()
    strict_readiness: bool = False

    @model_validator(mode="after")
    def _checks(self):
        for model, version in self.served():
            try:
                self.runner(model, version)  # every merged runner block must validate
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"the runner settings of {model}:{version} (runners, with its overrides): {problems}") from None
        for name, pipeline in self.pipelines.items():
            if name in self.models:
                raise ValueError(f"pipelines.{name}: a model has that name")
            for step in pipeline.steps:
                model, version = step.split(":")
                if model not in self.models or self.models[model].resolve(version) is None:
                    raise ValueError(f"pipelines.{name}: step {step} is not a served version or alias")
        project3 = self.course.project3
        if project3 and (project3.model not in self.models or self.models[project3.model].resolve(project3.version) is None):
            raise ValueError(f"course.project3 names {project3.model}:{project3.version}, which is not served")
        return self

    def served(self) -> list[tuple[str, str]]:
        """Every served (model, version), in configuration order."""
        return [(name, version) for name, model in self.models.items() for version in model.versions]

    def runner_defaults(self) -> RunnerSettings:
        """The shared ``runners`` block: the settings of a spare runner."""
        return RunnerSettings.model_validate(self.runners)

    def runner(self, model: str, version: str) -> RunnerSettings:
        """The runner settings of one version: the shared ``runners`` block with the version's overrides."""
        return RunnerSettings.model_validate(deep_merge(self.runners, self.models[model].versions[version]))

    def request_timeout(self) -> float:
        """Seconds a request may take in the entry (``entry.traffic.timeout``; BentoML's default is 60)."""
        return float((self.entry.get("traffic") or {}).get("timeout") or BENTOML_DEFAULT_TIMEOUT)

    def entry_options(self) -> dict:
        """The entry service's ``@bentoml.service`` options, file paths resolved against this file."""
        options = copy.deepcopy(self.entry)
        monitor = (options.get("monitoring") or {}).get("options") or {}
        if monitor.get("log_config_file"):
            monitor["log_config_file"] = str((self.path.parent / monitor["log_config_file"]).resolve())
        return options

    def state_file(self) -> Path | None:
        """The file backend's state file, resolved against this file."""
        return self.path.parent / self.state.path if self.state.path else None

    def repository_dir(self) -> Path | None:
        return self.path.parent / self.repository.path if self.repository.path else None

    def pipeline_metrics_path(self) -> Path | None:
        return self.path.parent / self.pipeline_metrics if self.pipeline_metrics else None

    def record(self) -> PromotionRecord | None:
        return PromotionRecord(self.path.parent / self.promotion_record) if self.promotion_record else None


def runner_name(model: str, version: str) -> str:
    """The BentoML service name of a version's runner."""
    return f"{model}-{version}"


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else copy.deepcopy(value)
    return merged


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml's parser: ~10x faster at start
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: merged keys may be overridden
                    continue
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                try:
                    first = lines.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    continue
                if first is not None:
                    raise ConfigError(f"duplicate key {key!r} at lines {first} and {line}")
                lines[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(text: str, path: str | os.PathLike | None = None) -> Any:
    """A YAML file of ours, parsed safely; a duplicate key at any depth is a ConfigError naming it and
    both lines. Syntax errors are ``yaml.YAMLError``."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_PATH)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read and check the configuration; a promotion record's choices override the aliases they move."""
    path = Path(path) if path else config_path()
    try:
        raw = load_yaml(path.read_text(), path) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if isinstance(raw.get("promotion_record"), str):
        _apply_promotions(raw, PromotionRecord(path.parent / raw["promotion_record"]), path)
    security = raw.get("security") or {}
    if isinstance(security, dict) and "api_token" in security:
        raise ConfigError(f"{path}: security.api_token: the token must not be in the file; name its environment variable in api_token_env")
    try:
        config = Config.model_validate({**raw, "path": path.resolve()})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    updates: dict[str, Any] = {"security": _with_token(config.security, path)}
    if os.environ.get(GRPC_PORT_ENV):  # one file, several replicas on one host (as BENTOML_PORT for HTTP)
        try:
            updates["grpc"] = Grpc.model_validate({**config.grpc.model_dump(), "port": os.environ[GRPC_PORT_ENV]})
        except ValidationError:
            raise ConfigError(f"{GRPC_PORT_ENV}: expected a port number, got {os.environ[GRPC_PORT_ENV]!r}") from None
    for section, model, overrides in (
        ("state", State, {"backend": STATE_BACKEND_ENV, "url": STATE_URL_ENV, "replica": REPLICA_ENV}),
        ("repository", Repository, {"path": REPOSITORY_ENV}),
    ):
        given = {key: os.environ[env] for key, env in overrides.items() if os.environ.get(env)}
        if given:
            try:
                updates[section] = model.model_validate({**getattr(config, section).model_dump(), **given})
            except ValidationError as exc:
                names = ", ".join(overrides[key] for key in given)
                raise ConfigError(f"{section} from the environment ({names}): {exc.errors()[0]['msg']}") from None
    return config.model_copy(update=updates)


def _apply_promotions(raw: dict, record: PromotionRecord, path: Path) -> None:
    """The record's choices, into the raw file's aliases (anything malformed is left to validation)."""
    models = raw.get("models")
    if not isinstance(models, dict):
        return
    try:
        decided = {name: record.stable(name) for name in models}
    except ValueError as exc:
        raise ConfigError(f"{path}: promotion record {record.path} cannot be read: {exc}") from None
    for name, model in models.items():
        promotion = model.get("promotion") if isinstance(model, dict) else None
        stable = decided[name]
        if not isinstance(promotion, dict) or stable is None:
            continue
        versions = model.get("versions") or []
        if stable not in versions:
            raise ConfigError(
                f"{path}: promotion record {record.path} makes {stable!r} {name}'s {promotion.get('alias', 'stable')}, but {stable!r} is not a served version of {name}"
            )
        if not isinstance(model.get("aliases"), dict):
            model["aliases"] = {}
        model["aliases"][promotion.get("alias", "stable")] = stable


def _with_token(security: Security, path: Path) -> Security:
    """The token comes from the environment variable named by ``api_token_env``; a named variable that is
    unset or short stops the service: a deployment meant to be protected must not start open."""
    env = security.api_token_env
    if not env:
        return security
    token = os.environ.get(env, "").strip()
    if len(token) < MIN_TOKEN_CHARS:
        problem = "is not set" if not token else f"is shorter than {MIN_TOKEN_CHARS} characters"
        raise ConfigError(f"{path}: security.api_token_env names {env}, but {env} {problem}")
    return security.model_copy(update={"api_token": token})
