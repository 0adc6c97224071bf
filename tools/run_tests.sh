#!/usr/bin/env bash
# Runs every test of the project: the Swift suites (kernels, loaders, tokenizer, templates, parity with the
# recorded transformers outputs), the command line against the same outputs (tests/), and the Python tools.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
swift test --skip-build

tools/setup_venv.sh
ONEBIT="$PWD/.build/debug/onebit" tools/.venv/bin/python -m pytest -q tests
if [ -f tools/train_demo.py ]; then
    tools/.venv/bin/python tools/train_demo.py --smoke
fi
