"""What the GPU tools share (standard library only): the card's name, and `onebit bench --json` run to its report."""
import json
import subprocess
import sys


def card_name():
    """nvidia-smi's name of GPU 0, or a phrase saying it could not be asked."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "an NVIDIA GPU (nvidia-smi did not name it)"


def bench_report(binary, *arguments):
    """The JSON object `binary bench --json ARGUMENTS` prints; exits with status 1, naming the command and its
    error, when the bench fails."""
    command = [binary, "bench", *arguments, "--json"]
    print("running:", " ".join(command[1:]), file=sys.stderr, flush=True)
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"onebit {' '.join(command[1:])} failed: {out.stderr.strip() or f'exit status {out.returncode}'}")
    return json.loads(out.stdout)
