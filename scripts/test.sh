#!/usr/bin/env bash
# Every test tier: ruff, mypy, the docs site (mkdocs --strict), then pytest over fast, real-data, slow, service,
# postgres, browser and docker tests, with a coverage summary of grader/ at the end (pytest-cov; no threshold).
# The docker tier needs an engine: this starts one (and stops it after) unless one is reachable.
# The browser tier needs Debian's chromium and the postgres tier PostgreSQL's binaries: installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test: installing ${missing[*]} from Debian's packages (browser and postgres tiers)" >&2
        # The tests start their own throwaway PostgreSQL cluster; the package need not create or start one.
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/grader-tests.conf
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
    else
        echo "test: ${missing[*]} missing and cannot be installed here; those tiers skip (and fail under CI=true)" >&2
    fi
fi

.venv/bin/ruff check .
.venv/bin/mypy  # strict on grader/, as pyproject.toml's [tool.mypy] says
# The docs site: --strict fails on a broken link, a missing anchor or a page left out of the nav (not with
# --quiet, which hides those warnings from --strict too).
site_dir=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site_dir" || { rm -rf "$site_dir"; exit 1; }
rm -rf "$site_dir"
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
# --durations: the slowest tests, so the run's time (kept under 45 minutes) is watched where it goes.
.venv/bin/python -m pytest -q --cov --cov-report=term --durations=25 "$@"
