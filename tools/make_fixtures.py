#!/usr/bin/env python3
"""Generates the tiny BitNet b1.58 model fixtures under Tests/Fixtures/models/ and their reference outputs.

    tools/setup_venv.sh && tools/.venv/bin/python tools/make_fixtures.py

Everything is generated from fixed seeds: running it again rewrites byte-identical files. What each fixture is and
the shape of reference.json are described in tools/README.md.
"""

import os
import shutil
import sys

import venv_guard  # noqa: F401  (re-runs this script inside tools/.venv)

# transformers' BitNet layers wrap their quantizers in torch.compile. Compiling needs a C++ toolchain and minutes
# of CPU; eager mode runs the same operations, so fixtures are made with compilation off.
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gguf import GGMLQuantizationType as QT  # noqa: E402

from fixturelib import corpus, ggufio, hfio, reference  # noqa: E402
from fixturelib import tok as tokmod  # noqa: E402
from fixturelib.weights import Spec, build_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "models")

HF_SPECS = [
    # The layout of microsoft/bitnet-b1.58-2B-4T: packed uint8 + bf16 weight_scale (multiply), tied embeddings.
    Spec("hf-packed-autobitlinear", hidden=64, intermediate=192, heads=4, kv_heads=2, layers=2, seed=101),
    # The bf16 masters of the model above (same seed), sharded, ternarized by transformers at every forward.
    Spec("hf-bf16-masters", hidden=64, intermediate=192, heads=4, kv_heads=2, layers=2, seed=101,
         mode="online", shards=2),
    # Older packed layout: linear_class bitlinear, weight_scale is a divisor; separate lm_head; vocabulary padded
    # past the tokenizer.
    Spec("hf-packed-bitlinear-untied", hidden=96, intermediate=160, heads=3, kv_heads=1, layers=2, seed=102,
         linear_class="bitlinear", tied=False, vocab_pad=20),
    # Odd sizes: hidden 100 (multiple of 4, not of 32), head_dim 20, one kv head, 3 layers; the config spelled as
    # transformers 5 writes it, with its own rope theta and norm epsilon.
    Spec("hf-odd", hidden=100, intermediate=276, heads=5, kv_heads=1, layers=3, seed=103,
         config_style="v5", rope_theta=10000.0, rms_norm_eps=1e-6),
    # In-dimensions that are multiples of 256, the source of the GGUF fixtures (TQ1_0/TQ2_0 blocks are 256 wide).
    Spec("hf-256", hidden=256, intermediate=512, heads=4, kv_heads=2, layers=2, seed=104),
]

# GGUF files converted from hf-256: (file name, ternary type, token embedding type, official metadata, version).
GGUF_SPECS = [
    # As microsoft/bitnet-b1.58-2B-4T-gguf: I2_S, F16 embedding, its exact 24 metadata keys.
    ("gguf-i2s.gguf", ggufio.GGML_TYPE_I2_S, QT.F16, True, 3),
    ("gguf-tq2.gguf", QT.TQ2_0, QT.F32, False, 3),
    ("gguf-tq1.gguf", QT.TQ1_0, QT.BF16, False, 3),
    # As bitnet.cpp's --quant-embd writes (Q6_K), and the Q8_0 alternative.
    ("gguf-q6k-embd.gguf", ggufio.GGML_TYPE_I2_S, QT.Q6_K, False, 3),
    ("gguf-q80-embd.gguf", ggufio.GGML_TYPE_I2_S, QT.Q8_0, False, 3),
]
GGUF_SOURCE = "hf-256"
# A version 2 file, converted from the small hf-packed-autobitlinear (I2_S only needs multiples of 128 weights per
# tensor, not 256-wide rows), so it also covers dimensions that are not multiples of 256.
GGUF_V2 = ("gguf-i2s-v2.gguf", ggufio.GGML_TYPE_I2_S, QT.F16, False, 2, "hf-packed-autobitlinear")
TYPE_NAMES = {ggufio.GGML_TYPE_I2_S: "I2_S"}


def generator_string() -> str:
    import gguf
    import numpy
    import safetensors
    import tokenizers
    import transformers
    versions = {
        "torch": torch.__version__, "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__,
        "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"), "numpy": numpy.__version__,
    }
    return "tools/make_fixtures.py with " + ", ".join(f"{k} {v}" for k, v in versions.items())


def _dist_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


def config_summary(spec: Spec, vocab: int) -> dict:
    return {
        "hidden_size": spec.hidden, "intermediate_size": spec.intermediate,
        "num_attention_heads": spec.heads, "num_key_value_heads": spec.kv_heads, "head_dim": spec.head_dim,
        "num_hidden_layers": spec.layers, "vocab_size": vocab, "tie_word_embeddings": spec.tied,
        "rope_theta": spec.rope_theta, "rms_norm_eps": spec.rms_norm_eps,
        "linear_class": spec.linear_class, "quantization_mode": spec.mode,
    }


def chat_text(directory: str) -> str:
    """The chat of fixturelib.corpus rendered by transformers with the fixture's own tokenizer_config.json."""
    from transformers import AutoTokenizer
    t = AutoTokenizer.from_pretrained(directory)
    return t.apply_chat_template(corpus.CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)    # one thread: float reductions in a fixed order
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)

    tokenizer = tokmod.train_tokenizer()
    n_tok = tokenizer.get_vocab_size()
    entries, models = [], {}
    for k, spec in enumerate(HF_SPECS):
        m = build_model(spec, n_tok)
        directory = os.path.join(OUT, spec.name)
        hfio.write_hf(m, tokenizer, directory)
        hf = hfio.load_hf(directory)
        hfio.verify_loaded(m, hf)
        prompts = reference.make_prompts(tokenizer, m.vocab, 1000 + k, corpus.TEXT_PROMPTS, chat_text(directory))
        entries.append({
            "name": spec.name, "path": spec.name, "format": "huggingface",
            "config": config_summary(spec, m.vocab),
            "prompts": reference.model_reference(hf, prompts),
        })
        models[spec.name] = (m, prompts)
        print(f"{spec.name}: ok", flush=True)

    ggufio.self_check()
    for fname, ternary, embd, official, version, source in [g + (GGUF_SOURCE,) for g in GGUF_SPECS] + [GGUF_V2]:
        m, prompts = models[source]
        path = os.path.join(OUT, fname)
        ggufio.write_gguf(path, m, tokenizer, ternary=ternary, embd=embd, official=official, version=version)
        embeddings = ggufio.verify_gguf(path, m, tokenizer, ternary=ternary, embd=embd, official=official,
                                        version=version)
        # The reference is the source HF model with the embedding (and so the tied head) the file actually holds.
        hf = hfio.load_hf(os.path.join(OUT, source))
        with torch.no_grad():
            for hname, value in embeddings.items():
                target = hf.lm_head.weight if hname == "lm_head.weight" else hf.get_input_embeddings().weight
                target.copy_(torch.from_numpy(value))
        assert m.spec.tied == (hf.lm_head.weight.data_ptr() == hf.get_input_embeddings().weight.data_ptr())
        config = config_summary(m.spec, m.vocab)
        config.update({
            "ternary_type": TYPE_NAMES.get(ternary, getattr(ternary, "name", str(ternary))),
            "embedding_type": embd.name, "gguf_version": version, "official_metadata": official,
        })
        entries.append({
            "name": fname[:-len(".gguf")], "path": fname, "format": "gguf", "source": source,
            "config": config, "prompts": reference.model_reference(hf, prompts),
        })
        print(f"{fname}: ok", flush=True)

    tokmod.dump_json({"generator": generator_string(), "models": entries}, os.path.join(OUT, "reference.json"))


if __name__ == "__main__":
    main()
