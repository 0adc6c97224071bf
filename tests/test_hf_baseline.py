"""tools/hf_baseline.py on the CPU: transformers and the real binary decode a committed fixture side by side."""

import os
import re
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "tools", "hf_baseline.py")
BINARY = os.environ.get("ONEBIT", os.path.join(ROOT, ".build", "debug", "onebit"))
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "models", "hf-packed-autobitlinear")


def baseline(*args, binary=BINARY):
    return subprocess.run([sys.executable, BASELINE, binary, *args], capture_output=True, text=True, timeout=300)


def test_both_sides_measured_for_each_length():
    done = baseline("--model", FIXTURE, "--device", "cpu", "--prompt", "8", "--new", "3,5", "--runs", "1", "--eager")
    assert done.returncode == 0, done.stderr
    assert "transformers (torch " in done.stdout and "on the CPU, prompts of 8 tokens" in done.stdout
    rows = [line for line in done.stdout.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split(" | ")[0] for row in rows] == ["| 3", "| 5"]
    for row in rows:
        rates = [float(value.replace(",", "")) for value in re.findall(r"([\d,.]+) tokens/s", row)]
        assert len(rates) == 4 and all(rate > 0 for rate in rates), row
        speedup = float(re.search(r"([\d,.]+)x \|$", row).group(1).replace(",", ""))
        assert abs(speedup - rates[3] / rates[1]) <= 0.06 * speedup, row


def test_a_failing_bench_names_its_command(tmp_path):
    binary = tmp_path / "onebit"
    binary.write_text("#!/bin/sh\necho 'error: the model directory has no config.json' >&2\nexit 1\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    done = baseline("--model", str(tmp_path), "--device", "cpu", "--eager", binary=str(binary))
    assert done.returncode == 1
    assert "bench --model" in done.stderr and "has no config.json" in done.stderr


def test_a_model_transformers_cannot_load_names_the_library():
    # onebit reads a GGUF file; transformers' from_pretrained takes a directory or a hub name.
    gguf = os.path.join(ROOT, "Tests", "Fixtures", "models", "gguf-tq2.gguf")
    done = baseline("--model", gguf, "--device", "cpu", "--prompt", "4", "--new", "2", "--runs", "1", "--eager")
    assert done.returncode == 1
    assert "hf_baseline: transformers failed: OSError" in done.stderr
    assert "| new tokens |" not in done.stdout


def test_bad_arguments_get_a_usage_error():
    done = baseline("--new", "16,x")
    assert done.returncode == 2 and "--new takes whole numbers" in done.stderr
    done = baseline("--new", "1")
    assert done.returncode == 2 and "every --new at least 2" in done.stderr
    done = baseline("--model", FIXTURE, binary=os.path.join(ROOT, "no-such-binary"))
    assert done.returncode == 1 and "is not an executable file" in done.stderr
