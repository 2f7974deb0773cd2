"""The image's entrypoint: `bentoml serve` of the Bento, with BentoML's own entrypoint for anything else.

    docker run IMAGE                      # serve the Bento: `bentoml serve $BENTO_PATH`
    docker run IMAGE serve [options]      # the same with `bentoml serve` options (--port, --host, ...)
    docker run IMAGE [options]            # the same
    docker run IMAGE <command> [args]     # anything else goes to BentoML's entrypoint (python, bash, ...)

A stop (`docker stop`, Kubernetes) drains the entry service before its runners: service.py installs
serving/ordered_stop.py when `bentoml serve` loads it, in the container as outside it. Each service
has circus' graceful timeout (30 s) before SIGKILL, so give a stop 60 s (`docker stop -t 60`,
terminationGracePeriodSeconds) for both.

`PORT` (Knative, Heroku) sets the HTTP port, BENTOML_PORT, unless it equals MODEL_SERVER_GRPC_PORT
(the gRPC port): then it names the gRPC port and HTTP keeps BENTOML_PORT.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    bento = os.environ.get("BENTO_PATH")
    if argv and argv[0] == "serve":
        argv = argv[1:]
    elif argv and not argv[0].startswith("-"):
        if not bento:
            sys.exit(f"not a serve command and no BENTO_PATH: {argv}")
        os.execvp("bash", ["bash", f"{bento}/env/docker/entrypoint.sh", *argv])
    # As BentoML's entrypoint does (Heroku-style PORT), except when PORT is the gRPC port: Knative sets
    # PORT to the container's one port, which for a gRPC predictor (deploy/kserve, port h2c) is gRPC's.
    if "PORT" in os.environ and os.environ["PORT"] != os.environ.get("MODEL_SERVER_GRPC_PORT"):
        os.environ["BENTOML_PORT"] = os.environ["PORT"]
    from bentoml_cli.cli import cli

    cli.main(args=["serve", *argv, *([bento] if bento else [])], prog_name="bentoml")


if __name__ == "__main__":
    main(sys.argv[1:])
