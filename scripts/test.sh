#!/usr/bin/env bash
# Every test tier: ruff, then pytest over fast, real-data, slow and docker tests.
# The docker tier needs an engine: this starts one (and stops it after) unless one is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check .
started_engine=""
if [ "${GRADER_SKIP_DOCKER:-}" != 1 ]; then
    if scripts/docker-engine.sh start; then
        started_engine=1
        # shellcheck disable=SC1091
        source "${GRADER_DOCKER_STATE:-/var/tmp/grader-docker}/docker-host.env"
        export DOCKER_HOST
    elif [ "${CI:-}" = true ]; then
        echo "test: CI=true but no Docker engine could be started" >&2
        exit 1
    fi
fi
trap '[ -n "$started_engine" ] && scripts/docker-engine.sh stop || true' EXIT
.venv/bin/python -m pytest -q "$@"
