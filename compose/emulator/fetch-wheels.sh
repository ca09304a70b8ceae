#!/bin/sh
# Downloads the emulator's Python dependencies (pyproject.toml's, plus uvloop) as wheels
# for the emulator image into compose/emulator/wheels/, on the host.
#
# Needed only where containers cannot reach PyPI (these machines: the host can, the
# containers can't); elsewhere the image installs from PyPI and this folder stays empty.
# The wheels are for CPython 3.11 on Linux of this machine's architecture: what the
# image's Debian bookworm (or python:3.11-slim) base runs.
#
#   compose/emulator/fetch-wheels.sh            # uses python3; PYTHON=.venv/bin/python to choose
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-python3}
arch=$(uname -m)
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
"$PYTHON" - "$root/pyproject.toml" > "$requirements" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project.get("optional-dependencies", {}).get("fast", [])))
PY
mkdir -p "$here/wheels"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --dest "$here/wheels" \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
    --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" \
    --platform "manylinux_2_5_$arch" --platform "manylinux1_$arch" --platform any \
    -r "$requirements"
echo "wheels for the emulator image in $here/wheels:"
ls "$here/wheels"
