"""Total generation throughput of a running `onebit serve` with N concurrent streams.

    tools/.venv/bin/python tools/bench_serve.py --url http://127.0.0.1:8080 --streams 1 4 --max-tokens 128

Every stream asks for exactly --max-tokens tokens (end-of-sequence tokens are forbidden through logit_bias, their
ids read from /tokenize), so runs with different stream counts do the same work per stream. Prints, per stream
count, the generated tokens, wall seconds and tokens per second summed over streams.
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


def run(url: str, streams: int, max_tokens: int, bias: dict) -> tuple:
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
    counts = [0] * streams

    def one(index: int):
        stream = client.completions.create(
            model=client.models.list().data[0].id,
            prompt=f"Once upon a time, story number {index},",
            max_tokens=max_tokens,
            logit_bias=bias,
            temperature=0.8,
            seed=index,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.usage:
                counts[index] = chunk.usage.completion_tokens

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    bias = {str(i): -100 for i in eos_ids(args.url)}
    run(args.url, 1, 4, bias)  # warm-up
    for streams in args.streams:
        tokens, seconds = run(args.url, streams, args.max_tokens, bias)
        print(f"streams={streams} tokens={tokens} seconds={seconds:.2f} tokens/s={tokens / seconds:.1f}")


if __name__ == "__main__":
    main()
