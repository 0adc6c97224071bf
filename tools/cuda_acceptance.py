#!/usr/bin/env python3
"""Measures the CUDA backend against its acceptance list on the GPU of this machine, in one command.

    python3 tools/cuda_acceptance.py path/to/onebit [Tests/Fixtures/models]

Runs, in this order, from the repository root:
- `onebit selftest --device cuda --skip-bench` (kernels against the scalar reference on odd sizes, fixtures,
  batch invariance);
- `tools/cuda_parity.py` (the fixtures against transformers' recorded outputs and the CPU);
- `onebit bench --device cuda --synthetic bitnet-2b4t --steps-ahead 8 -p 512 -n 128 -r 2` (one sequence, bf16 head:
  decoding against the roofline the bench measures, and the 512-token prompt);
- the same with `-p 128 -n 32 -r 3 --batch 64` (64 sequences decoding together).

Prints one Markdown table naming the card, each item's target and what was measured, and exits non-zero when an
item is not met.
"""
import os
import subprocess
import sys

from gpu_runs import bench_report, card_name

DECODE_SHARE = 0.70
PROMPT_TOKENS_PER_SECOND = 20_000
BATCH_TOKENS_PER_SECOND = 30_000


def bench(binary, *args):
    return bench_report(binary, "--device", "cuda", "--synthetic", "bitnet-2b4t", "--steps-ahead", "8", *args)


def passes(command):
    """Whether `command` exits with status 0, and the last line it printed."""
    print("running:", " ".join(command), file=sys.stderr, flush=True)
    out = subprocess.run(command, capture_output=True, text=True)
    lines = (out.stdout + out.stderr).strip().splitlines()
    return out.returncode == 0, lines[-1] if lines else ""


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: python3 tools/cuda_acceptance.py path/to/onebit [Tests/Fixtures/models]")
    binary = os.path.abspath(sys.argv[1])
    fixtures = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/models"
    here = os.path.dirname(os.path.abspath(__file__))

    selftest, selftest_line = passes([binary, "selftest", "--device", "cuda", "--skip-bench", "--fixtures", fixtures])
    parity, parity_line = passes([sys.executable, os.path.join(here, "cuda_parity.py"), binary, fixtures])
    one = bench(binary, "-p", "512", "-n", "128", "-r", "2")
    many = bench(binary, "-p", "128", "-n", "32", "-r", "3", "--batch", "64")

    share = one["generation_share_of_roofline"]
    rows = [
        ("Decode at batch 1, bf16 head", f"{DECODE_SHARE:.0%} of the roofline",
         f"{one['generation_tokens_per_second']:,.0f} tokens/s, {share:.1%} of "
         f"{one['roofline_tokens_per_second']:,.0f} ({one['read_bandwidth_bytes_per_second'] / 1e12:.2f} TB/s / "
         f"{one['bytes_per_generated_token'] / 1e9:.3f} GB a token)", share >= DECODE_SHARE),
        ("Prefill of a 512-token prompt", f"{PROMPT_TOKENS_PER_SECOND:,} tokens/s",
         f"{one['prompt_tokens_per_second']:,.0f} tokens/s",
         one["prompt_tokens_per_second"] >= PROMPT_TOKENS_PER_SECOND),
        ("64 concurrent sequences", f"{BATCH_TOKENS_PER_SECOND:,} tokens/s",
         f"{many['generation_tokens_per_second']:,.0f} tokens/s (runs: "
         f"{', '.join(f'{r:,.0f}' for r in many['generation_runs'])})",
         many["generation_tokens_per_second"] >= BATCH_TOKENS_PER_SECOND),
        ("Kernels against the scalar reference, batch invariance", "`onebit selftest` passes", selftest_line,
         selftest),
        ("GPU and CPU agree on the fixtures", "`tools/cuda_parity.py` passes", parity_line, parity),
    ]
    print(f"Acceptance on {card_name()}, `--synthetic bitnet-2b4t`:\n")
    print("| item | target | measured | met |")
    print("|---|---|---|---|")
    for item, target, measured, met in rows:
        print(f"| {item} | {target} | {measured} | {'yes' if met else 'no'} |")
    sys.exit(0 if all(row[3] for row in rows) else 1)


if __name__ == "__main__":
    main()
