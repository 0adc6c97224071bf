"""The onebit command line against the transformers outputs recorded in Tests/Fixtures/models/reference.json.

These are the checks a user of `onebit score` and `onebit say --raw --temperature 0` relies on: per-token
log-probabilities within the numerics contract's bound, and greedy continuations equal to transformers'.
"""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "Tests", "Fixtures", "models")
BINARY = os.environ.get("ONEBIT", os.path.join(ROOT, ".build", "debug", "onebit"))
REFERENCE = json.load(open(os.path.join(MODELS, "reference.json"), encoding="utf-8"))
ENTRIES = REFERENCE["models"]


def onebit(*args: str) -> dict:
    """Runs the binary and parses the JSON object it prints."""
    done = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"onebit {' '.join(args)} failed: {done.stderr}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_score_matches_transformers(entry):
    path = os.path.join(MODELS, entry["path"])
    deltas = []
    for prompt in entry["prompts"]:
        ids = prompt["token_ids"]
        if len(ids) < 2:
            continue
        out = onebit("score", "--model", path, "--json", "--token-ids", ",".join(map(str, ids)))
        assert out["token_ids"] == ids
        assert out["token_logprobs"][0] is None
        deltas += [abs(a - b) for a, b in zip(out["token_logprobs"][1:], prompt["token_logprobs"][1:])]
    assert deltas and sum(deltas) / len(deltas) < 0.05


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_text_prompts_tokenize_and_continue_like_transformers(entry):
    path = os.path.join(MODELS, entry["path"])
    for prompt in entry["prompts"]:
        text = prompt["text"]
        if text is None:
            continue
        assert onebit("tokenize", "--model", path, "--json", text)["token_ids"] == prompt["token_ids"]
        out = onebit("say", "--model", path, "--raw", "--temperature", "0", "--max-tokens", "16", "--json", text)
        assert_greedy_parity(out["token_ids"][:8], prompt, text)


# A greedy step whose two best logits are closer than this can go either way: one int8 rounding that lands on the
# other side of .5 (a "knife edge") moves logits by about this much. GGUF files with Q8_0/Q6_K embeddings hit such
# edges often, because their values lie on a coarse grid.
KNIFE_EDGE = 0.1


def assert_greedy_parity(ours: list, prompt: dict, text: str) -> None:
    """onebit's greedy ids equal transformers' (fp32 or float64 run) up to the end, or up to a step where the
    recorded margin shows the choice is within rounding noise. onebit stops at an end-of-sequence id, which it
    reports as the last id."""
    for reference in (prompt["greedy_token_ids"], prompt["greedy_token_ids_fp64"]):
        if ours == reference[: len(ours)]:
            return
    step = next(i for i, (a, b) in enumerate(zip(ours, prompt["greedy_token_ids"])) if a != b)
    margin = prompt["greedy_margins"][step]
    assert margin < KNIFE_EDGE, f"{text!r}: step {step} differs with a margin of {margin}: {ours}"


def test_bad_input_is_a_clear_error():
    path = os.path.join(MODELS, "hf-odd")
    done = subprocess.run([BINARY, "score", "--model", path, "--json", "--token-ids", "1,x"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "not a token id" in done.stderr
    done = subprocess.run([BINARY, "info", "--model", "/nonexistent"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "/nonexistent" in done.stderr
    done = subprocess.run([BINARY, "score", "--model", path, "--json", "--token-ids", "1,99999"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "outside the vocabulary" in done.stderr
