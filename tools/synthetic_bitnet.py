#!/usr/bin/env python3
"""Writes a Hugging Face BitNet b1.58 checkpoint of bitnet-b1.58-2B-4T's shape with random weights, for speed runs.

    python3 tools/synthetic_bitnet.py OUT_DIR [tokenizer_dir]

Ternary projections are packed as transformers stores them (uint8, four rows per byte), embeddings are random bf16
tied to the output head. Speed does not depend on the values; the tokenizer is copied from tokenizer_dir
(default: a fixture), whose vocabulary is smaller than the model's, which the loader allows.
"""
import json
import os
import shutil
import sys

import numpy as np

HIDDEN, FFN, HEADS, KV_HEADS, LAYERS, VOCAB = 2560, 6912, 20, 5, 30, 128256


def main():
    out = sys.argv[1]
    tokenizer = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/models/hf-packed-autobitlinear"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    # Bytes whose four bit pairs are all valid codes (0, 1, 2).
    valid = np.array([b for b in range(256) if all((b >> (2 * k)) & 3 != 3 for k in range(4))], dtype=np.uint8)
    head_dim = HIDDEN // HEADS
    tensors = {}

    def bf16(values):
        return ("BF16", values.shape, (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16))

    def random_bf16(shape):
        # Sign, a small exponent and a random mantissa: magnitudes of 0.008 to 0.016.
        bits = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)
        return ("BF16", shape, (bits & 0x807F) | 0x3C00)

    tensors["model.embed_tokens.weight"] = random_bf16((VOCAB, HIDDEN))
    tensors["model.norm.weight"] = bf16(np.ones(HIDDEN))
    shapes = {"self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (KV_HEADS * head_dim, HIDDEN),
              "self_attn.v_proj": (KV_HEADS * head_dim, HIDDEN), "self_attn.o_proj": (HIDDEN, HIDDEN),
              "mlp.gate_proj": (FFN, HIDDEN), "mlp.up_proj": (FFN, HIDDEN), "mlp.down_proj": (HIDDEN, FFN)}
    for layer in range(LAYERS):
        p = f"model.layers.{layer}."
        for name, (rows, cols) in shapes.items():
            codes = valid[rng.integers(0, len(valid), size=(rows // 4, cols))]
            tensors[p + name + ".weight"] = ("U8", (rows // 4, cols), codes)
            tensors[p + name + ".weight_scale"] = bf16(np.array([1.0]))
        for name, width in [("input_layernorm", HIDDEN), ("post_attention_layernorm", HIDDEN),
                            ("self_attn.attn_sub_norm", HIDDEN), ("mlp.ffn_sub_norm", FFN)]:
            tensors[p + name + ".weight"] = bf16(np.ones(width))

    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(f"{out}/model.safetensors", "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for _, _, data in tensors.values():
            f.write(np.ascontiguousarray(data).tobytes())

    config = json.load(open(f"{tokenizer}/config.json"))
    config.update(hidden_size=HIDDEN, intermediate_size=FFN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                  num_hidden_layers=LAYERS, vocab_size=VOCAB, rope_theta=500000.0, rms_norm_eps=1e-5,
                  tie_word_embeddings=True)
    json.dump(config, open(f"{out}/config.json", "w"), indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{tokenizer}/{name}", out)


if __name__ == "__main__":
    main()
