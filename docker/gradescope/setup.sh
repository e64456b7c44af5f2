#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder; the bundle is unpacked in /autograder/source.
# Installs Python 3.11, bubblewrap, the grader (CPU build of torch) and CIFAR-10 into /autograder/data.
set -euo pipefail

SOURCE=/autograder/source
VENV=/opt/grader-venv
DATA=/autograder/data/cifar10
# The CPU wheels of torch: Gradescope has no GPU, and the default build pulls several GB of CUDA libraries.
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates python3-pip >/dev/null

python=$(command -v python3.11 || true)
if [[ -z $python ]] && apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv >/dev/null 2>&1; then
    python=$(command -v python3.11)
fi
if [[ -n $python ]]; then
    "$python" -m venv "$VENV"
else
    # No Python 3.11 package on this base image: uv fetches a standalone build.
    python3 -m pip install --quiet uv
    python3 -m uv venv --python 3.11 --seed "$VENV"
fi

"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet --extra-index-url "$TORCH_INDEX" -c "$SOURCE/constraints.txt" -e "$SOURCE"

assignment=$(cat "$SOURCE/ASSIGNMENT")
"$VENV/bin/grader" list | grep -q "$assignment" || { echo "unknown assignment $assignment" >&2; exit 1; }

# Data already in place (a custom image) stays; else a copy shipped in the bundle; else the official download.
if [[ ! -d $DATA/train ]]; then
    if [[ -d $SOURCE/data/cifar10/train ]]; then
        mkdir -p "$(dirname "$DATA")" && mv "$SOURCE/data/cifar10" "$DATA"
    else
        "$VENV/bin/grader" data prepare --data-dir "$DATA"
    fi
    chmod -R a+rX "$DATA"
fi
