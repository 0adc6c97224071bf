"""The built-in demo model (Models/onebit-demo) against what transformers measured on the same files."""

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "Models", "onebit-demo")
BINARY = os.environ.get("ONEBIT", os.path.join(ROOT, ".build", "debug", "onebit"))
REFERENCE = json.load(open(os.path.join(DEMO, "reference.json"), encoding="utf-8"))

# `onebit say --seed 7 --max-tokens 24 "To be, or not to be"`, recorded from onebit itself: a change here means
# sampling, the kernels or the embedded files changed behaviour.
RECORDED_SAY = " a\nwife to the king, and to be executed by the duke.\n\nKING JOHN.\nI am not"


def onebit(*args: str) -> str:
    done = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"onebit {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def test_heldout_perplexity_matches_transformers():
    windowing = REFERENCE["windowing"]
    assert windowing["bos_at_window_start"] and windowing["stride"] == windowing["context"]
    out = json.loads(onebit("ppl", "--file", os.path.join(DEMO, REFERENCE["heldout_file"]), "--ctx",
                            str(windowing["context"]), "--json"))
    assert out["tokens"] == REFERENCE["tokens"]
    assert abs(out["perplexity"] / REFERENCE["perplexity"] - 1) < 0.005, (out, REFERENCE["perplexity"])


def test_greedy_continuations_match_transformers():
    for case in REFERENCE["greedy"]:
        if case["prompt"].startswith("<|begin_of_text|>"):
            continue  # rendered chat, tokenized by the reference with a second BOS; not a raw prompt
        out = json.loads(onebit("say", "--raw", "--temperature", "0", "--max-tokens", "16", "--json", case["prompt"]))
        assert out["token_ids"][:8] == case["output_ids"][:8], case["prompt"]


def test_default_say_is_the_demo_model_and_reproducible():
    text = onebit("say", "--seed", "7", "--max-tokens", "24", "To be, or not to be")
    assert text == RECORDED_SAY + "\n"
    assert "onebit-demo" in onebit("info")


def test_chat_answers_each_line_until_the_input_ends():
    done = subprocess.run([BINARY, "chat", "--seed", "3", "--max-tokens", "12", "--device", "cpu"],
                          input="To be, or not to be\n/reset\nFriends, Romans\n", capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    replies = [part for part in done.stdout.split("> ") if part.strip()]
    assert len(replies) == 2 and all(len(reply.strip()) > 5 for reply in replies)


def test_doctor_checks_the_machine_and_runs_the_built_in_model():
    out = onebit("doctor")
    assert "ok    CPU generation" in out and "FAIL" not in out


def test_selftest_passes_on_the_cpu_and_needs_a_named_device():
    fixtures = os.path.join(ROOT, "Tests", "Fixtures", "models")
    out = onebit("selftest", "--device", "cpu", "--skip-bench", "--fixtures", fixtures)
    assert "selftest: PASS" in out and "FAIL" not in out
    assert "kernels  PASS" in out and "head     PASS  int8" in out and "batch    PASS  8/8" in out
    refused = subprocess.run([BINARY, "selftest", "--device", "auto"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "--device must be cuda or cpu" in refused.stderr


def test_bench_and_serve_refuse_fewer_than_one_step_ahead():
    for command in (["bench", "-p", "4", "-n", "4"], ["serve", "--port", "0"]):
        refused = subprocess.run([BINARY, *command, "--steps-ahead", "0"], capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode != 0
        assert "--steps-ahead must be at least 1" in refused.stderr


def test_bench_refuses_draws_it_cannot_make_on_the_device():
    cases = [
        (["--temperature=-1"], "--temperature must be 0 or more"),
        (["--temperature", "1", "--top-k", "300"], "--top-k must be 0 to 256"),
        (["--top-k", "40"], "--top-k needs a --temperature above 0"),
        (["--top-p", "0.9"], "--top-p needs a --temperature above 0"),
        (["--temperature", "1", "--top-k", "40", "--top-p", "0"], "--top-p must be above 0 and at most 1"),
    ]
    for flags, message in cases:
        refused = subprocess.run([BINARY, "bench", "-p", "4", "-n", "4", *flags], capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode != 0
        assert message in refused.stderr


def test_bench_draws_among_the_top_k_with_queued_steps():
    out = onebit("bench", "--model", DEMO, "-p", "4", "-n", "6", "--batch", "2", "--steps-ahead", "3", "--temperature", "0.9",
                 "--top-k", "40", "--top-p", "0.9", "--json")
    report = json.loads(out)
    assert report["top_k"] == 40 and report["steps_ahead"] == 3 and report["generation_tokens_per_second"] > 0
