"""The paths every deployment leaves open, written once: probes and scrapers reach them without a
token (serving/auth.py) and they are never shed under load (serving/middleware.py)."""

# BentoML's probes, and the Open Inference Protocol's (KServe probes these: deploy/kserve/)
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/v2/health/live", "/v2/health/ready"})
METRICS_PATH = "/metrics"
INFRASTRUCTURE_PATHS = HEALTH_PATHS | {METRICS_PATH}
# The web page's own files (serving/protocols/page.py, STATIC_PATHS): they hold no data, and a browser
# cannot send a token when it loads a page; everything the page then asks for needs the token.
PAGE_PATHS = frozenset({"/", "/page/app.mjs", "/page/logic.mjs", "/page/page.css"})
SPEC_PATH = "/docs.json"  # the published OpenAPI document (serving/openapi.py)
