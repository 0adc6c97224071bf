"""Runs a tools/ script inside tools/.venv, creating it first with tools/setup_venv.sh when needed.

The fixtures must be made with the pinned reference libraries of tools/requirements.txt, never with whatever the
system Python happens to have; importing this module before any third-party import guarantees it.
"""

import os
import subprocess
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(TOOLS, ".venv")


def ensure_venv() -> None:
    """Re-executes the running script with the venv's interpreter unless it already is that interpreter."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    python = os.path.join(VENV, "bin", "python")
    subprocess.run([os.path.join(TOOLS, "setup_venv.sh")], check=True)
    os.execv(python, [python, *sys.argv])


ensure_venv()
