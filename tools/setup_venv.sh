#!/usr/bin/env bash
# Creates tools/.venv with the pinned reference libraries; every tools/*.py script runs from it.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q -r requirements.txt
