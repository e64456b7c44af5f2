#!/usr/bin/env bash
# Make the project runnable on a fresh machine: bubblewrap for the sandbox, and .venv with the pinned deps.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing bubblewrap (the sandbox) from Debian's packages" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }
    else
        echo "bootstrap: bubblewrap is missing; the grader will fall back to rlimits (apt-get install bubblewrap)" >&2
    fi
fi

stamp=.venv/.installed
wanted=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "bootstrap: installing the grader into .venv (torch from constraints.txt; a few minutes the first time)" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
    echo "$wanted" > "$stamp"
fi
