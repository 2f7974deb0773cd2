"""The paths every deployment leaves open, written once: probes and scrapers reach them without a
token (serving/auth.py) and they are never shed under load (serving/middleware.py)."""

HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
METRICS_PATH = "/metrics"
INFRASTRUCTURE_PATHS = HEALTH_PATHS | {METRICS_PATH}
SPEC_PATH = "/docs.json"  # the published OpenAPI document (serving/openapi.py)
