"""Random tiny BitNet b1.58 models and their on-disk HF layouts.

Every model starts as a set of bf16 "master" weights (what microsoft/bitnet-b1.58-2B-4T-bf16 holds). The ternary
weights are derived from them exactly as transformers' online quantizer does (absmean per tensor, round half to
even, clamp to [-1, 1]; bitnet-b158.md section 2.1), so a packed fixture and its masters describe the same model.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

LINEARS = [
    ("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"), ("self_attn", "o_proj"),
    ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj"),
]
# Init std range per projection. o_proj and down_proj write into the residual stream: large enough that the layers,
# not the token's own (tied) embedding, decide the next token, otherwise greedy continuations just repeat the
# input. q/k set how sharp attention is. The others feed a norm or the per-token activation quantizer, which do
# not care about scale.
PROJ_STD = {
    "q_proj": (0.05, 0.15), "k_proj": (0.05, 0.15), "v_proj": (0.02, 0.08), "o_proj": (0.15, 0.3),
    "gate_proj": (0.02, 0.08), "up_proj": (0.02, 0.08), "down_proj": (0.15, 0.3),
}
NORMS = ["input_layernorm", "post_attention_layernorm", "self_attn.attn_sub_norm", "mlp.ffn_sub_norm"]


@dataclass
class Spec:
    """Shape and on-disk layout of one HF fixture."""
    name: str
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    layers: int
    seed: int
    linear_class: str = "autobitlinear"     # "autobitlinear" (multiply by weight_scale) or "bitlinear" (divide)
    mode: str = "offline"                   # "offline" = packed uint8, "online" = bf16 masters
    tied: bool = True
    vocab_pad: int = 0                      # extra embedding rows past the tokenizer's vocabulary
    shards: int = 1
    rope_theta: float = 500000.0
    rms_norm_eps: float = 1e-5
    config_style: str = "2b4t"              # "2b4t": keys as the published config.json; "v5": as transformers 5 saves
    extra: dict = field(default_factory=dict)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def out_in(self, proj: str) -> tuple:
        """(out_features, in_features) of one projection."""
        kv = self.kv_heads * self.head_dim
        return {
            "q_proj": (self.hidden, self.hidden), "k_proj": (kv, self.hidden), "v_proj": (kv, self.hidden),
            "o_proj": (self.hidden, self.hidden), "gate_proj": (self.intermediate, self.hidden),
            "up_proj": (self.intermediate, self.hidden), "down_proj": (self.hidden, self.intermediate),
        }[proj]


def make_masters(spec: Spec, vocab: int) -> dict:
    """bf16 master weights, keyed by HF tensor name.

    Init scales are chosen so the tiny random model is not flat: embedding std 2.5/sqrt(hidden) gives logits with a
    std of a few nats; every projection gets its own random std so that per-tensor scales all differ;
    norm weights are 1 + noise so that a reader that skips a norm is caught (PROJ_STD explains the rest)."""
    rng = np.random.default_rng(spec.seed)
    t = {}

    def bf16(a):
        return torch.from_numpy(np.asarray(a, dtype=np.float32)).to(torch.bfloat16)

    t["model.embed_tokens.weight"] = bf16(rng.normal(0, 2.5 / np.sqrt(spec.hidden), (vocab, spec.hidden)))
    for i in range(spec.layers):
        p = f"model.layers.{i}."
        for norm in NORMS:
            dim = spec.intermediate if norm.endswith("ffn_sub_norm") else spec.hidden
            t[p + norm + ".weight"] = bf16(1.0 + 0.2 * rng.standard_normal(dim))
        for group, proj in LINEARS:
            lo, hi = PROJ_STD[proj]
            std = rng.uniform(lo, hi)
            t[p + f"{group}.{proj}.weight"] = bf16(rng.normal(0, std, spec.out_in(proj)))
    t["model.norm.weight"] = bf16(1.0 + 0.2 * rng.standard_normal(spec.hidden))
    if not spec.tied:
        t["lm_head.weight"] = bf16(rng.normal(0, 2.5 / np.sqrt(spec.hidden), (vocab, spec.hidden)))
    return t


def is_ternary_name(name: str) -> bool:
    return name.endswith("_proj.weight")


def ternarize(master: torch.Tensor):
    """Ternary codes and absmean scale of a bf16 master, as transformers' WeightQuant computes them (in fp32).

    Returns (int8 codes in {-1,0,1}, mean|W| as fp32)."""
    w = master.float()
    mean = w.abs().mean().clamp(min=1e-5)
    codes = torch.round(w * (1.0 / mean)).clamp(-1, 1).to(torch.int8)
    return codes, mean


def pack_rows(codes: torch.Tensor) -> torch.Tensor:
    """HF packing (bitnet-b158.md section 3.1): uint8 [out/4, in]; packed row r holds rows r, r+R, r+2R, r+3R in
    bit pairs 0-1, 2-3, 4-5, 6-7, each stored as w + 1."""
    out, _ = codes.shape
    assert out % 4 == 0, "HF packing needs out_features divisible by 4"
    r = out // 4
    c = (codes.to(torch.int16) + 1).to(torch.uint8)
    packed = torch.zeros((r, codes.shape[1]), dtype=torch.uint8)
    for i in range(4):
        packed |= c[i * r:(i + 1) * r] << (2 * i)
    return packed


def unpack_rows(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of pack_rows, written independently of transformers' unpack for cross-checking."""
    parts = [((packed >> (2 * i)) & 3).to(torch.int8) - 1 for i in range(4)]
    return torch.cat(parts, dim=0)


@dataclass
class Model:
    """One tiny model: its spec, masters, and (for every projection) ternary codes and the scale as stored."""
    spec: Spec
    vocab: int
    masters: dict
    codes: dict = field(default_factory=dict)       # name -> int8 codes [out, in]
    scale: dict = field(default_factory=dict)       # name -> fp32 multiply scale (effective = codes * scale)
    stored: dict = field(default_factory=dict)      # name -> the weight_scale value written to disk (bf16 as fp32)

    def effective(self, name: str) -> torch.Tensor:
        """fp32 effective weight of a projection (codes x scale), what every reader must reconstruct."""
        return self.codes[name].float() * self.scale[name]


def build_model(spec: Spec, tokenizer_vocab: int) -> Model:
    """Masters plus the ternary view of them. For packed layouts the scale is the bf16 value written to disk
    (autobitlinear: bf16(mean), bitlinear: 1 / bf16(1/mean)); for masters it is the fp32 mean that the online
    quantizer recomputes."""
    vocab = tokenizer_vocab + spec.vocab_pad
    m = Model(spec, vocab, make_masters(spec, vocab))
    for name, w in m.masters.items():
        if not is_ternary_name(name):
            continue
        codes, mean = ternarize(w)
        m.codes[name] = codes
        if spec.mode == "online":
            m.scale[name] = mean
        elif spec.linear_class == "autobitlinear":
            m.stored[name] = mean.to(torch.bfloat16).float()
            m.scale[name] = m.stored[name]
        else:
            m.stored[name] = (1.0 / mean).to(torch.bfloat16).float()
            m.scale[name] = 1.0 / m.stored[name]
    return m


def stored_tensors(m: Model) -> dict:
    """The tensors of model.safetensors for this layout, in a fixed order."""
    out = {}
    for name, w in m.masters.items():
        if not is_ternary_name(name) or m.spec.mode == "online":
            out[name] = w
            continue
        out[name] = pack_rows(m.codes[name])
        out[name[:-len("weight")] + "weight_scale"] = m.stored[name].reshape(1).to(torch.bfloat16)
    return out


def hf_config(m: Model, ids: dict) -> dict:
    """config.json mirroring microsoft/bitnet-b1.58-2B-4T(-bf16)'s keys (without its auto_map to remote code).

    The "v5" style writes what transformers 5 save_pretrained writes instead (rope_parameters, dtype), so that
    readers are tested on both spellings."""
    s = m.spec
    cfg = {
        "architectures": ["BitNetForCausalLM"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "hidden_act": "relu2",
        "hidden_size": s.hidden,
        "initializer_range": 0.02,
        "intermediate_size": s.intermediate,
        "max_position_embeddings": 4096,
        "model_type": "bitnet",
        "rms_norm_eps": s.rms_norm_eps,
        "num_attention_heads": s.heads,
        "num_hidden_layers": s.layers,
        "num_key_value_heads": s.kv_heads,
        "rope_theta": s.rope_theta,
        "tie_word_embeddings": s.tied,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": m.vocab,
        "quantization_config": {
            "quant_method": "bitnet",
            "linear_class": s.linear_class,
            "quantization_mode": s.mode,
        },
    }
    if s.config_style == "v5":
        del cfg["rope_theta"], cfg["torch_dtype"]
        cfg["rope_parameters"] = {"rope_theta": s.rope_theta, "rope_type": "default"}
        cfg["dtype"] = "bfloat16"
    return cfg
