#!/usr/bin/env bash
# Builds the Gradescope autograder zip for one assignment from the committed HEAD:
#   docker/gradescope/make-bundle.sh a3_cnn [gradescope-a3_cnn.zip]
# Set DATA_DIR to a CIFAR-10 root to ship it in the zip instead of downloading it in setup.sh.
# Set LEADERBOARD=1 to add the accuracy on the hidden test images to Gradescope's leaderboard (results.json "leaderboard").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
assignment=${1:?usage: $0 ASSIGNMENT [OUT.zip]}
out=$(realpath -m "${2:-gradescope-$assignment.zip}")
[[ -f $ROOT/assignments/$assignment/assignment.toml ]] || { echo "no assignment $assignment" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# Tracked files only (no data, environments or reports); no reference solutions next to student code.
git -C "$ROOT" archive --format=tar HEAD -- . ':!solutions' ':!examples' ':!docker' ':!bench' | tar -x -C "$stage"
cp "$ROOT/docker/gradescope/setup.sh" "$ROOT/docker/gradescope/run_autograder" "$stage/"
chmod +x "$stage/setup.sh" "$stage/run_autograder"
echo "$assignment" >"$stage/ASSIGNMENT"
[[ ${LEADERBOARD:-} == 1 ]] && touch "$stage/LEADERBOARD"
if [[ -n ${DATA_DIR:-} ]]; then
    mkdir -p "$stage/data/cifar10"
    cp -r "$DATA_DIR/train" "$DATA_DIR/test" "$stage/data/cifar10/"
fi
rm -f "$out"
(cd "$stage" && zip -qr "$out" .)
echo "$out"
