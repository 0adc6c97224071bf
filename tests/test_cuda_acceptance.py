"""tools/cuda_acceptance.py against a stand-in for the binary: the table it prints and its exit status."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ACCEPTANCE = Path(__file__).resolve().parent.parent / "tools" / "cuda_acceptance.py"

# Answers selftest, score and bench as the real binary does, with the numbers the environment gives it.
STAND_IN = '''#!{python}
import json, os, sys
args = sys.argv[1:]
if args[0] == "selftest":
    ok = os.environ["SELFTEST_OK"] == "1"
    print("selftest: PASS" if ok else "selftest: FAIL (1 failed)")
    sys.exit(0 if ok else 1)
if args[0] == "score":
    device = args[args.index("--device") + 1]
    shift = float(os.environ["CUDA_SHIFT"]) if device == "cuda" else 0.0
    print(json.dumps({{"token_logprobs": [-1.0 + shift, -2.0 + shift]}}))
    sys.exit(0)
assert args[0] == "bench" and "--json" in args, args
if os.environ.get("BENCH_ERROR"):
    print(os.environ["BENCH_ERROR"], file=sys.stderr)
    sys.exit(1)
batch = int(args[args.index("--batch") + 1]) if "--batch" in args else 1
rate = float(os.environ["BATCH_RATE"]) if batch > 1 else float(os.environ["DECODE_RATE"])
print(json.dumps({{
    "generation_tokens_per_second": rate, "generation_runs": [rate * 0.9, rate],
    "prompt_tokens_per_second": float(os.environ["PROMPT_RATE"]),
    "roofline_tokens_per_second": 3000.0, "generation_share_of_roofline": rate / 3000.0 if batch == 1 else 0.3,
    "read_bandwidth_bytes_per_second": 4.0e12, "bytes_per_generated_token": 1_260_000_000,
}}))
'''


def run(tmp_path, **numbers):
    binary = tmp_path / "onebit"
    binary.write_text(STAND_IN.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    fixtures = tmp_path / "models"
    fixtures.mkdir()
    (fixtures / "reference.json").write_text(json.dumps({"models": [{
        "name": "tiny", "path": "tiny.gguf", "format": "gguf",
        "prompts": [{"token_ids": [1, 2], "token_logprobs": [-1.0, -2.0]}],
    }]}))
    env = dict(os.environ, PATH=str(tmp_path), **{k: str(v) for k, v in numbers.items()})
    return subprocess.run([sys.executable, str(ACCEPTANCE), str(binary), str(fixtures)], capture_output=True,
                          text=True, env=env)


def rows(result):
    return {line.split(" | ")[0].lstrip("| "): line.split(" | ")[-1].rstrip(" |")
            for line in result.stdout.splitlines() if line.startswith("| ") and not line.startswith("| item")}


def test_every_item_met_exits_zero(tmp_path):
    result = run(tmp_path, SELFTEST_OK=1, CUDA_SHIFT=0.001, DECODE_RATE=2200, PROMPT_RATE=25000, BATCH_RATE=31000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Acceptance on an NVIDIA GPU (nvidia-smi did not name it)")
    assert set(rows(result).values()) == {"yes"}, result.stdout
    assert "2,200 tokens/s, 73.3% of 3,000 (4.00 TB/s / 1.260 GB a token)" in result.stdout
    assert "31,000 tokens/s (runs: 27,900, 31,000)" in result.stdout


def test_each_item_short_of_its_target_says_no_and_fails(tmp_path):
    result = run(tmp_path, SELFTEST_OK=0, CUDA_SHIFT=0.5, DECODE_RATE=1000, PROMPT_RATE=19999, BATCH_RATE=29999)
    assert result.returncode == 1
    met = rows(result)
    assert met == {
        "Decode at batch 1, bf16 head": "no", "Prefill of a 512-token prompt": "no", "64 concurrent sequences": "no",
        "Kernels against the scalar reference, batch invariance": "no", "GPU and CPU agree on the fixtures": "no",
    }, result.stdout
    assert "selftest: FAIL (1 failed)" in result.stdout and "| FAIL |" in result.stdout


def test_a_bench_that_fails_stops_the_script_naming_the_command_and_its_error(tmp_path):
    result = run(tmp_path, SELFTEST_OK=1, CUDA_SHIFT=0.0, DECODE_RATE=2200, PROMPT_RATE=25000, BATCH_RATE=31000,
                 BENCH_ERROR="error: no CUDA driver (libcuda.so.1)")
    assert result.returncode == 1
    assert "onebit bench --device cuda --synthetic bitnet-2b4t" in result.stderr
    assert "failed: error: no CUDA driver (libcuda.so.1)" in result.stderr
    assert "| item |" not in result.stdout


def test_without_a_binary_it_prints_its_usage():
    result = subprocess.run([sys.executable, str(ACCEPTANCE)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == "usage: python3 tools/cuda_acceptance.py path/to/onebit [Tests/Fixtures/models]"
