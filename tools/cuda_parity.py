#!/usr/bin/env python3
"""Checks the CUDA backend against the CPU backend and the recorded transformers outputs.

For every model and prompt of Tests/Fixtures/models/reference.json: teacher-forced log-probabilities from
`onebit score --json` on --device cuda and --device cpu (mean |delta| per token, against the reference and against
each other), and the first 8 greedy tokens of `onebit say --raw --temperature 0 --json` for prompts given as text.

    python3 tools/cuda_parity.py path/to/onebit [Tests/Fixtures/models]

Exits non-zero when a mean |delta logprob| against the reference reaches 0.05 or a greedy continuation differs.
"""
import concurrent.futures
import json
import subprocess
import sys


def run(binary, args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def deltas(a, b):
    return [abs(x - y) for x, y in zip(a, b) if x is not None and y is not None]


def check(binary, root, model, prompt):
    path = f"{root}/{model['path']}"
    ids = ",".join(map(str, prompt["token_ids"]))
    result = {"model": model["name"], "tokens": len(prompt["token_ids"])}
    scores = {d: run(binary, ["score", "--json", "--device", d, "--model", path, "--token-ids", ids])["token_logprobs"]
              for d in ("cuda", "cpu")}
    reference = prompt["token_logprobs"]
    result["cuda_vs_ref"] = deltas(scores["cuda"], reference)
    result["cpu_vs_ref"] = deltas(scores["cpu"], reference)
    result["cuda_vs_cpu"] = deltas(scores["cuda"], scores["cpu"])
    if prompt.get("text") is not None:
        greedy = {d: run(binary, ["say", "--raw", "--temperature", "0", "--max-tokens", "8", "--json", "--device", d,
                                  "--model", path, prompt["text"]])["token_ids"][:8] for d in ("cuda", "cpu")}
        expected = [prompt["greedy_token_ids"][:8], prompt.get("greedy_token_ids_fp64", [])[:8]]
        n = len(greedy["cuda"])
        result["greedy_ok"] = any(greedy["cuda"] == e[:n] for e in expected)
        result["greedy_same_as_cpu"] = greedy["cuda"] == greedy["cpu"]
    return result


def main():
    binary = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/models"
    reference = json.load(open(f"{root}/reference.json"))
    jobs = [(m, p) for m in reference["models"] for p in m["prompts"]]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: check(binary, root, *job), jobs))
    failed = False
    print(f"{'model':28} {'tokens':>6} {'cuda-ref':>9} {'cpu-ref':>9} {'cuda-cpu':>9} {'max':>8} {'greedy':>7} {'=cpu':>5}")
    for name in dict.fromkeys(r["model"] for r in results):
        rows = [r for r in results if r["model"] == name]
        hf = next(m for m in reference["models"] if m["name"] == name)["format"] == "huggingface"

        def mean(key):
            values = [d for r in rows for d in r[key]]
            return sum(values) / max(len(values), 1)

        greedy = [r for r in rows if "greedy_ok" in r]
        ok = sum(r["greedy_ok"] for r in greedy)
        same = sum(r["greedy_same_as_cpu"] for r in greedy)
        largest = max(d for r in rows for d in r["cuda_vs_cpu"])
        # transformers parity is the contract for Hugging Face checkpoints (as in ParityTests); every format must
        # agree with the CPU backend.
        failed |= mean("cuda_vs_cpu") >= 0.05 or (hf and (mean("cuda_vs_ref") >= 0.05 or ok < len(greedy)))
        print(f"{name:28} {sum(len(r['cuda_vs_ref']) for r in rows):6} {mean('cuda_vs_ref'):9.5f} "
              f"{mean('cpu_vs_ref'):9.5f} {mean('cuda_vs_cpu'):9.6f} {largest:8.5f} {ok:>3}/{len(greedy):<3} "
              f"{same:>2}/{len(greedy)}")
    print("mean |dlogprob| per token; max: largest cuda-cpu; greedy: first 8 tokens equal to a reference run")
    print("FAIL" if failed else "PASS")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
