#!/usr/bin/env bash
# Runs every test of the project: the Swift suites (kernels, loaders, tokenizer, templates, parity with the
# recorded transformers outputs, CUDA kernels compiled with NVRTC), the command line and the server against real
# clients (tests/), and the Python tools.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup_venv.sh
# NVRTC from its PyPI wheel: no GPU is needed to compile the CUDA kernels, so a kernel that does not compile fails
# here.
nvrtc=$(tools/.venv/bin/python -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))')
export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

swift build --build-tests
swift test --skip-build

ONEBIT="$PWD/.build/debug/onebit" tools/.venv/bin/python -m pytest -q tests
tools/.venv/bin/python tools/train_demo.py --smoke
