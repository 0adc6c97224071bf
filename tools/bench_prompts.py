"""Prompt throughput of a running `onebit serve`: N concurrent completions of long prompts, two tokens each.

    python3 tools/bench_prompts.py --url http://127.0.0.1:8080 --requests 16 --words 300

Every request's prompt is the same text of --words words behind a prefix of its round and index, so no two share a
leading cache block (the server would otherwise reuse one's keys and values for another). The server reads the
prompts in steps that mix them with each other. Prints, for each of --rounds rounds, the wall time from the first
request to the last answer, the prompt tokens per second that makes (the server's own `usage.prompt_tokens`), and
the slowest request. Only the standard library, so it runs on a machine without the tools' venv.
"""

import argparse
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def complete(url, model, prompt):
    """(seconds, prompt tokens) of one completion, or what it failed with."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 2, "temperature": 0}).encode()
    request = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    started = time.time()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            usage = json.loads(response.read())["usage"]
        return time.time() - started, usage["prompt_tokens"]
    except urllib.error.HTTPError as error:  # the server's answer says why
        return f"HTTP {error.code}: {error.read().decode(errors='replace').strip()}"
    except Exception as error:  # reported with the others once the round is over
        return error


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    try:
        with urllib.request.urlopen(args.url + "/v1/models", timeout=30) as response:
            model = json.loads(response.read())["data"][0]["id"]
    except OSError as error:
        raise SystemExit(f"no server answered at {args.url}: {error}; start one with `onebit serve`")
    text = " ".join(f"word{i % 97} and more" for i in range(args.words))
    for round_index in range(args.rounds):
        prompts = [f"{round_index} {i} {text}" for i in range(args.requests)]
        started = time.time()
        with ThreadPoolExecutor(max_workers=args.requests) as pool:
            results = list(pool.map(lambda prompt: complete(args.url, model, prompt), prompts))
        wall = time.time() - started
        failures = [r for r in results if not isinstance(r, tuple)]
        if failures:
            raise SystemExit(f"{len(failures)} of {args.requests} requests failed, first: {failures[0]}")
        tokens = sum(tokens for _, tokens in results)
        print(
            f"round {round_index + 1}: {args.requests} prompts of {results[0][1]} tokens in {wall:.2f} s, "
            f"{tokens / wall:.0f} prompt tokens/s, slowest request {max(t for t, _ in results):.2f} s"
        )


if __name__ == "__main__":
    main()
