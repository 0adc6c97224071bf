"""The name of this machine's first NVIDIA GPU, for the tables the GPU tools print (standard library only)."""
import subprocess


def card_name():
    """nvidia-smi's name of GPU 0, or a phrase saying it could not be asked."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "an NVIDIA GPU (nvidia-smi did not name it)"
