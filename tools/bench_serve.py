"""Throughput and latency of a running `onebit serve` with N concurrent streaming clients.

    tools/.venv/bin/python tools/bench_serve.py --url http://127.0.0.1:8080 --streams 1 8 32 --max-tokens 128

Every stream asks for exactly --max-tokens tokens (end-of-sequence tokens are forbidden through logit_bias, their
ids read from /tokenize), so runs with different stream counts do the same work per stream. A logit bias makes the
server bring each whole row of logits back to sample on the host; --allow-eos sends none, so the sampling runs where
the logits are (top-k with --top-k, top-p with --top-p, temperature alone otherwise), and a stream that ends early is
not a failure. Prints, per stream
count: requests/s, generated tokens/s summed over streams, the 50th/99th percentiles of the time to first
token (request sent to first streamed text) and of the inter-token latency (gap between streamed chunks), and how
many requests failed (an exception, or fewer tokens than asked for).
"""

import argparse
import json
import threading
import time
import urllib.request

import openai


def eos_ids(url: str) -> list:
    ids = []
    for text in ("<|end_of_text|>", "<|eot_id|>"):
        request = urllib.request.Request(
            url + "/tokenize", data=json.dumps({"content": text, "add_special": False}).encode(), method="POST"
        )
        with urllib.request.urlopen(request) as response:
            tokens = json.load(response)["tokens"]
        if len(tokens) == 1:
            ids.append(tokens[0])
    return ids


def percentile(values: list, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def run(url: str, streams: int, max_tokens: int, bias: dict, sampling: dict, exact: bool = True) -> dict:
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
    model = client.models.list().data[0].id
    counts = [0] * streams
    first_token = []
    gaps = []
    failures = []
    lock = threading.Lock()

    def one(index: int):
        try:
            stream_one(index)
        except Exception as error:  # a failed request is counted and reported, not fatal to the run
            with lock:
                failures.append(f"{type(error).__name__}: {error}")

    # Only what was asked for is sent: an explicit null is a malformed field to the server.
    options = {"logit_bias": bias} if bias else {}
    if sampling["top_p"] is not None:
        options["top_p"] = sampling["top_p"]
    if sampling["top_k"]:
        options["extra_body"] = {"top_k": sampling["top_k"]}

    def stream_one(index: int):
        sent = time.perf_counter()
        stream = client.completions.create(
            model=model,
            prompt=f"Once upon a time, story number {index},",
            max_tokens=max_tokens,
            temperature=sampling["temperature"],
            seed=index,
            stream=True,
            stream_options={"include_usage": True},
            **options,
        )
        arrivals = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                arrivals.append(time.perf_counter())
            if chunk.usage:
                counts[index] = chunk.usage.completion_tokens
        with lock:
            if arrivals:
                first_token.append(arrivals[0] - sent)
            gaps.extend(b - a for a, b in zip(arrivals, arrivals[1:]))
            if counts[index] != max_tokens and (exact or counts[index] == 0):
                failures.append(f"stream {index}: {counts[index]} of {max_tokens} tokens")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {
        "streams": streams, "tokens": sum(counts), "seconds": seconds, "requests_per_s": streams / seconds,
        "tokens_per_s": sum(counts) / seconds,
        "ttft_p50_ms": 1000 * percentile(first_token, 0.5), "ttft_p99_ms": 1000 * percentile(first_token, 0.99),
        "itl_p50_ms": 1000 * percentile(gaps, 0.5), "itl_p99_ms": 1000 * percentile(gaps, 0.99),
        "failures": failures,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--allow-eos", action="store_true", help="send no logit bias; streams may end early")
    args = parser.parse_args()
    sampling = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k}
    bias = {} if args.allow_eos else {str(i): -100 for i in eos_ids(args.url)}
    exact = not args.allow_eos
    run(args.url, 1, 4, bias, sampling, exact)  # warm-up
    for streams in args.streams:
        r = run(args.url, streams, args.max_tokens, bias, sampling, exact)
        print(
            f"streams={streams} tokens={r['tokens']} seconds={r['seconds']:.2f} requests/s={r['requests_per_s']:.2f}"
            f" tokens/s={r['tokens_per_s']:.1f} ttft p50/p99={r['ttft_p50_ms']:.0f}/{r['ttft_p99_ms']:.0f} ms"
            f" itl p50/p99={r['itl_p50_ms']:.1f}/{r['itl_p99_ms']:.1f} ms failures={len(r['failures'])}",
            flush=True,
        )
        for failure in r["failures"][:5]:
            print(f"  {failure}", flush=True)


if __name__ == "__main__":
    main()
