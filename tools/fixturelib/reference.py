"""Reference outputs of transformers (fp32): teacher-forced per-token logprobs and greedy continuations."""

import numpy as np
import torch

GREEDY_TOKENS = 16
TOP_K = 5


def make_prompts(tokenizer, vocab: int, seed: int, text_prompts, chat_text: str) -> list:
    """Text prompts (tokenized, BOS added by the post-processor), the rendered chat, and raw random id sequences
    of 1, 8 and 60 tokens drawn from the whole model vocabulary (so padded rows and control tokens occur too)."""
    prompts = []
    for text in list(text_prompts) + [chat_text]:
        prompts.append({"text": text, "token_ids": tokenizer.encode(text).ids})
    rng = np.random.default_rng(seed)
    for n in (1, 8, 60):
        prompts.append({"text": None, "token_ids": [int(x) for x in rng.integers(0, vocab, n)]})
    return prompts


def _f(x) -> float:
    """A float32 value as the shortest decimal that reads back to the same float32."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-")) if np.isfinite(x) else None


@torch.no_grad()
def run_prompt(model, token_ids: list, with_top: bool) -> dict:
    """Logprob of every token given the ones before it (first is null) and a 16-token greedy continuation.

    The continuation comes from model.generate with EOS stopping disabled; it is cross-checked against a plain
    argmax loop over full forwards (no KV cache) so that the recorded ids do not depend on the cache path."""
    from transformers import GenerationConfig

    ids = torch.tensor([token_ids], dtype=torch.long)
    logits = model(ids).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    token_lp = [None] + [_f(logp[i - 1, token_ids[i]].item()) for i in range(1, len(token_ids))]

    # generate() fills unset fields from the model's generation_config.json, whose eos list would stop early:
    # clear it on the loaded model so that exactly GREEDY_TOKENS ids are produced.
    model.generation_config.eos_token_id = None
    gen_cfg = GenerationConfig(do_sample=False, max_new_tokens=GREEDY_TOKENS, eos_token_id=None,
                               pad_token_id=0, num_beams=1)
    out = model.generate(ids, generation_config=gen_cfg, attention_mask=torch.ones_like(ids))
    greedy = [int(x) for x in out[0, len(token_ids):]]
    assert len(greedy) == GREEDY_TOKENS, "generation stopped early"

    seq, margins = list(token_ids), []
    for _ in range(GREEDY_TOKENS):
        step = model(torch.tensor([seq])).logits[0, -1]
        top2 = torch.topk(step, 2).values
        margins.append(_f((top2[0] - top2[1]).item()))
        seq.append(int(step.argmax()))
    assert seq[len(token_ids):] == greedy, f"generate {greedy} != full-forward greedy {seq[len(token_ids):]}"

    # greedy_margins[i]: logit of the chosen token minus the runner-up at step i. A parity failure at a step with
    # a tiny margin is the int8 rounding knife edge, not a bug.
    result = {"token_logprobs": token_lp, "greedy_token_ids": greedy, "greedy_margins": margins}
    if with_top:
        last = logits[-1]
        top = torch.topk(last, TOP_K)
        result["last_top5"] = {
            "token_ids": [int(i) for i in top.indices],
            "logits": [_f(v) for v in top.values.tolist()],
            "logprobs": [_f(logp[-1, i].item()) for i in top.indices],
        }
    return result


def model_reference(model, prompts: list) -> list:
    """Reference entries for every prompt; the full top-5 of the last position is recorded for the first prompt.

    Each prompt is also run with the model converted to float64 (`*_fp64` fields). fp32 transformers sums the
    fake-quantized activations in an order of its own, which moves an int8 rounding now and then; the float64 run
    shows what the integer arithmetic of the numerics contract gives, so a test can tell such a flip from a bug."""
    import copy

    model64 = copy.deepcopy(model).double()
    out = []
    for k, p in enumerate(prompts):
        entry = {"text": p["text"], "token_ids": p["token_ids"]}
        entry.update(run_prompt(model, p["token_ids"], with_top=(k == 0)))
        exact = run_prompt(model64, p["token_ids"], with_top=False)
        entry["token_logprobs_fp64"] = [None if v is None else float(v) for v in exact["token_logprobs"]]
        entry["greedy_token_ids_fp64"] = exact["greedy_token_ids"]
        out.append(entry)
    return out
