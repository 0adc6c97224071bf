#!/usr/bin/env python3
"""Decodes the same checkpoint with Hugging Face transformers and with onebit on one device, and prints both.

    python3 tools/hf_baseline.py path/to/onebit [--model DIR] [--device cuda|cpu] [--prompt 64] [--new 16,64]
                                 [--runs 2] [--eager]

Without --model it writes a checkpoint of bitnet-b1.58-2B-4T's shape with random ternary weights
(`tools/synthetic_bitnet.py`, packed uint8 + weight_scale, as the published checkpoint stores them) into a
temporary directory. Both sides get the same prompt length and decode greedily for exactly the asked number of
tokens:

- transformers: `AutoModelForCausalLM.from_pretrained(..., dtype=bfloat16)` on the device, `generate` with
  `min_new_tokens = max_new_tokens = N`, best of `--runs`. End to end is N over the whole call; decode is N - 1
  tokens over the call's time less that of a call for one token (the prompt and the first token).
- onebit: `onebit bench --model DIR --device D -p P -n N -r RUNS --json` (with `--steps-ahead 8` on a GPU), whose
  prompt and decode rates are measured apart.

transformers wraps its BitNet quantizers in `torch.compile`, as it ships; `--eager` turns compilation off
(needed where there is no C++ toolchain, and quicker to start). Prints one Markdown table naming the card and the
library versions; exits non-zero, naming the step, when either side fails.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from gpu_runs import bench_report, card_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onebit", help="the onebit binary")
    parser.add_argument("--model", help="a Hugging Face BitNet directory (default: a synthetic 2B-4T-shaped one)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens (default 64)")
    parser.add_argument("--new", default="16,64", help="new tokens, comma-separated (default 16,64)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each, the best kept (default 2)")
    parser.add_argument("--eager", action="store_true", help="run transformers without torch.compile")
    arguments = parser.parse_args(argv)
    try:
        arguments.new = [int(n) for n in arguments.new.split(",")]
    except ValueError:
        parser.error(f"--new takes whole numbers separated by commas, not {arguments.new!r}")
    if arguments.prompt < 1 or arguments.runs < 1 or any(n < 2 for n in arguments.new):
        parser.error("--prompt and --runs must be at least 1, and every --new at least 2")
    return arguments


def fail(step, detail):
    print(f"hf_baseline: {step} failed: {detail}", file=sys.stderr)
    sys.exit(1)


def synthetic_checkpoint(directory):
    print("writing a 2B-4T-shaped checkpoint with random weights...", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "synthetic_bitnet.py"), directory],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        fail("tools/synthetic_bitnet.py", done.stderr.strip() or f"exit status {done.returncode}")


def transformers_rates(model_dir, device, prompt, news, runs):
    """{n: (end-to-end tokens/s, decode tokens/s)} and the library versions, from transformers' generate."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device).eval()
    vocab = min(model.config.vocab_size, len(transformers.AutoTokenizer.from_pretrained(model_dir)))
    ids = torch.randint(0, vocab, (1, prompt), generator=torch.Generator().manual_seed(0)).to(device)

    def best_seconds(count):
        best = float("inf")
        for _ in range(runs):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=count,
                                 min_new_tokens=count, do_sample=False, pad_token_id=0)
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
            if out.shape[1] != prompt + count:
                fail("transformers generate", f"{out.shape[1] - prompt} new tokens instead of {count}")
        return best

    with torch.inference_mode():
        print("transformers: warming up...", file=sys.stderr, flush=True)
        best_seconds(2)
        first = best_seconds(1)
        rates = {}
        for n in news:
            print(f"transformers: {n} new tokens...", file=sys.stderr, flush=True)
            seconds = best_seconds(n)
            rates[n] = (n / seconds, (n - 1) / max(seconds - first, 1e-9))
    return rates, f"torch {torch.__version__}, transformers {transformers.__version__}"


def onebit_rates(binary, model_dir, device, prompt, news, runs):
    """{n: (prompt tokens/s, decode tokens/s)} from onebit bench."""
    rates = {}
    for n in news:
        arguments = ["--model", model_dir, "--device", device, "-p", str(prompt), "-n", str(n), "-r", str(runs)]
        if device == "cuda":
            arguments += ["--steps-ahead", "8"]
        result = bench_report(binary, *arguments)
        rates[n] = (result["prompt_tokens_per_second"], result["generation_tokens_per_second"])
    return rates


def table(where, versions, prompt, hf, ours):
    lines = [f"transformers ({versions}) and onebit on {where}, prompts of {prompt} tokens, greedy:", "",
             "| new tokens | transformers end to end | transformers decode | onebit prompt | onebit decode | decode "
             "speedup |",
             "|---|---|---|---|---|---|"]
    for n in hf:
        end_to_end, decode = hf[n]
        prompt_rate, our_decode = ours[n]
        lines.append(f"| {n} | {end_to_end:,.1f} tokens/s | {decode:,.1f} tokens/s | {prompt_rate:,.0f} tokens/s | "
                     f"{our_decode:,.1f} tokens/s | {our_decode / decode:,.1f}x |")
    return "\n".join(lines)


def main(argv):
    arguments = parse_arguments(argv)
    if not os.access(arguments.onebit, os.X_OK):
        fail("finding the binary", f"{arguments.onebit} is not an executable file")
    if arguments.eager:
        # Read when torch is imported, so set first.
        os.environ["TORCHDYNAMO_DISABLE"] = "1"
        os.environ["TORCH_COMPILE_DISABLE"] = "1"
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = arguments.model
        if model_dir is None:
            model_dir = os.path.join(scratch, "bitnet-2b4t-shape")
            synthetic_checkpoint(model_dir)
        ours = onebit_rates(arguments.onebit, model_dir, arguments.device, arguments.prompt, arguments.new,
                            arguments.runs)
        try:
            hf, versions = transformers_rates(model_dir, arguments.device, arguments.prompt, arguments.new,
                                              arguments.runs)
        except Exception as error:  # whatever the library raises, reported as its step
            fail("transformers", f"{type(error).__name__}: {error}")
    print(table("the CPU" if arguments.device == "cpu" else card_name(), versions, arguments.prompt, hf, ours))


if __name__ == "__main__":
    main(sys.argv[1:])
