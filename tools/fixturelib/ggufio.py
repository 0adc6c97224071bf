"""GGUF fixtures converted from an HF fixture, written with gguf-py's GGUFWriter, and read back for checking.

Facts used (bitnet-b158.md): architecture "bitnet-b1.58" and its metadata keys (section 4.3), tensor names and
ggml dimension order [in, out] (4.4), TQ1_0/TQ2_0 block layouts (4.1), the I2_S layout of bitnet.cpp (4.5).
"""

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as QT

from .tok import BITNET_CPP_CHAT_TEMPLATE, CHAT_TEMPLATE, special_ids, vocab_tables
from .weights import Model

ARCH = "bitnet-b1.58"

# bitnet.cpp's fork numbers (ggml.h GGML_TYPE_I2_S = 36; llama.h LLAMA_FTYPE_MOSTLY_I2_S = 40). gguf-py does not
# know either: in mainline ggml, 36 is a removed type id.
GGML_TYPE_I2_S = 36
FTYPE_I2_S = 40

# HF tensor name suffix -> GGUF name (per layer), in the order the tensors are written.
LAYER_TENSORS = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.attn_sub_norm.weight", "attn_sub_norm.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
    ("mlp.ffn_sub_norm.weight", "ffn_sub_norm.weight"),
]


def name_map(m: Model) -> dict:
    """GGUF tensor name -> HF tensor name, in file order."""
    out = {"token_embd.weight": "model.embed_tokens.weight"}
    for i in range(m.spec.layers):
        for hf, gg in LAYER_TENSORS:
            out[f"blk.{i}.{gg}"] = f"model.layers.{i}.{hf}"
    out["output_norm.weight"] = "model.norm.weight"
    if not m.spec.tied:
        out["output.weight"] = "lm_head.weight"
    return out


# ---------------------------------------------------------------------------------------------------- I2_S

def encode_i2s(codes: torch.Tensor, scale: float) -> np.ndarray:
    """bitnet.cpp I2_S, x86 layout: the tensor as one flat row-major run of 2-bit codes (w + 1), every 128 weights
    in 32 bytes where byte gp holds weights gp, 32+gp, 64+gp, 96+gp in bits 7-6, 5-4, 3-2, 1-0; then a 32-byte
    tail whose first 4 bytes are the float32 scale."""
    c = (codes.numpy().astype(np.int16) + 1).astype(np.uint8).reshape(-1)
    assert c.size % 128 == 0, "I2_S needs a multiple of 128 weights"
    g = c.reshape(-1, 4, 32)
    body = (g[:, 0] << 6) | (g[:, 1] << 4) | (g[:, 2] << 2) | g[:, 3]
    tail = np.zeros(32, dtype=np.uint8)
    tail[:4] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
    return np.concatenate([body.reshape(-1).astype(np.uint8), tail])


def decode_i2s(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of encode_i2s: float32 [rows, cols] = scale * map(code), map = {0: -1, 1: 0, 2: +1}."""
    n = rows * cols
    body = raw[:n // 4].reshape(-1, 32)
    scale = np.frombuffer(raw[n // 4:n // 4 + 4].tobytes(), dtype=np.float32)[0]
    codes = np.stack([(body >> s) & 3 for s in (6, 4, 2, 0)], axis=1).reshape(-1)
    assert not np.any(codes == 3), "I2_S code 3 is unused"
    return ((codes.astype(np.float32) - 1.0) * scale).reshape(rows, cols)


# ---------------------------------------------------------------------------------------------------- Q6_K

QK_K = 256


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Q6_K (gguf-py can only dequantize it). Block of 256: ql[128] low nibbles, qh[64] high bit pairs,
    scales[16] int8 (one per 16 weights), d fp16; weight = d * scale_j * (q - 32), q in 0..63.

    Bit placement as ggml's dequantize_row_q6_K reads it: in half h (128 weights) weight r's low 4 bits are in
    ql[64h + r%64] (low nibble for r < 64, high nibble otherwise), its high 2 bits in qh[32h + r%32] at bit
    2*(r // 32). The choice of scales is simple absmax rounding (not ggml's search): any valid Q6_K is fine here,
    since the references use the dequantized values."""
    rows = x.reshape(-1, QK_K).astype(np.float32)
    nb = rows.shape[0]
    sub = rows.reshape(nb, 16, 16)
    sc = np.abs(sub).max(axis=-1) / 31.0                                   # per-16 scale, float
    d = (sc.max(axis=-1) / 127.0).astype(np.float16)                      # block scale as stored
    df = d.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = np.where(df[:, None] > 0, np.round(sc / df[:, None]), 0).clip(-128, 127).astype(np.int8)
        eff = df[:, None] * scales.astype(np.float32)
        q = np.where(eff[..., None] > 0, np.round(sub / eff[..., None]), 0).clip(-32, 31)
    u = (q.astype(np.int16) + 32).astype(np.uint8).reshape(nb, 2, 128)    # [block, half, r]
    ql = np.zeros((nb, 2, 64), dtype=np.uint8)
    qh = np.zeros((nb, 2, 32), dtype=np.uint8)
    for part in range(2):                                                 # r // 64
        ql |= (u[:, :, part * 64:(part + 1) * 64] & 0x0F) << (4 * part)
    for quarter in range(4):                                              # r // 32
        qh |= (u[:, :, quarter * 32:(quarter + 1) * 32] >> 4) << (2 * quarter)
    block = np.concatenate([ql.reshape(nb, 128), qh.reshape(nb, 64), scales.view(np.uint8),
                            d.reshape(nb, 1).view(np.uint8)], axis=1)
    assert block.shape[1] == 210
    # What the block is meant to decode to; gguf-py's dequantizer must agree (checked in self_check).
    quantize_q6_k.intended = (eff[..., None] * q).reshape(x.shape).astype(np.float32)
    return block.reshape(*x.shape[:-1], x.shape[-1] // QK_K * 210)


# ---------------------------------------------------------------------------------------------------- self check

def self_check(seed: int = 7) -> None:
    """Checks the encoders against the layouts as documented, element by element, on random data:
    I2_S (own encoder and decoder), TQ2_0 and TQ1_0 (gguf-py's quantizer, bitnet-b158.md section 4.1), and the
    own Q6_K quantizer against gguf-py's Q6_K dequantizer."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 2, size=(8, 256)).astype(np.int8)
    scale = np.float32(0.8125)

    raw = encode_i2s(torch.from_numpy(codes), float(scale))
    flat = codes.reshape(-1)
    for k in range(flat.size):                 # weight k: block k//128, byte k%32, bit pair by (k%128)//32
        byte = raw[(k // 128) * 32 + k % 32]
        shift = 6 - 2 * ((k % 128) // 32)
        assert int((byte >> shift) & 3) - 1 == flat[k]
    assert np.frombuffer(raw[-32:-28].tobytes(), np.float32)[0] == scale and not raw[-28:].any()
    assert np.array_equal(decode_i2s(raw, 8, 256), codes.astype(np.float32) * scale)

    x = codes.astype(np.float32) * scale
    tq2 = gguf.quants.quantize(x, QT.TQ2_0).reshape(-1, 66)
    for b, blk in enumerate(tq2):              # qs[32c + m] holds 128c + m + 32n in bits 2n..2n+1; then fp16 d
        d = np.frombuffer(blk[64:66].tobytes(), np.float16)[0]
        assert np.float32(d) == scale
        for c in range(2):
            for m in range(32):
                for n in range(4):
                    assert int((blk[32 * c + m] >> (2 * n)) & 3) - 1 == flat[256 * b + 128 * c + 32 * n + m]

    tq1 = gguf.quants.quantize(x, QT.TQ1_0).reshape(-1, 54)

    def trit(byte, n):                         # decode trit n of a byte: (uint8(byte * 3^n) * 3) >> 8
        return ((int(byte) * 3 ** n) % 256 * 3) >> 8

    for b, blk in enumerate(tq1):
        w = flat[256 * b:256 * (b + 1)]
        assert np.float32(np.frombuffer(blk[52:54].tobytes(), np.float16)[0]) == scale
        for m in range(32):
            for n in range(5):
                assert trit(blk[m], n) - 1 == w[m + 32 * n]
        for m in range(16):
            for n in range(5):
                assert trit(blk[32 + m], n) - 1 == w[160 + m + 16 * n]
        for j in range(4):
            for m in range(4):
                assert trit(blk[48 + j], m) - 1 == w[240 + j + 4 * m]

    e = rng.normal(0, 0.2, size=(6, 512)).astype(np.float32)
    e[0, :16] = 0.0                            # an all-zero sub-block
    q6 = quantize_q6_k(e)
    back = gguf.quants.dequantize(q6, QT.Q6_K)
    assert np.array_equal(back, quantize_q6_k.intended), "Q6_K layout disagrees with gguf-py"
    assert np.abs(back - e).max() < 0.02 * np.abs(e).max()


# ---------------------------------------------------------------------------------------------------- writing

def embedding_array(m: Model, name: str, qtype: QT):
    """An F32/F16/BF16/Q8_0/Q6_K tensor (token embedding or output head) for GGUFWriter.add_tensor."""
    w = m.masters[name].float().numpy()
    if qtype == QT.Q6_K:
        return quantize_q6_k(w)
    return gguf.quants.quantize(w, qtype)


def write_gguf(path: str, m: Model, tokenizer, *, ternary: int, embd: QT, official: bool = False,
               version: int = 3) -> None:
    """Writes one GGUF converted from model `m`.

    ternary: GGML_TYPE_I2_S, QT.TQ1_0 or QT.TQ2_0. embd: type of token_embd (and output, if untied).
    official: mirror the 24 metadata keys of microsoft/bitnet-b1.58-2B-4T-gguf exactly (microsoft/BitNet issue
    #373 log: no tokenizer.ggml.pre, zero scores, padding id = eos, bitnet.cpp's chat template); otherwise write
    what llama.cpp's converter writes for a Llama-3 tokenizer (pre "llama-bpe", eot id, the HF chat template).
    version: 3, or 2 (the header field is rewritten after writing; v2 and v3 share one layout, v3 only added
    big-endian files)."""
    s = m.spec
    ids = special_ids(tokenizer)
    tokens, types, merges = vocab_tables(tokenizer, m.vocab)
    ftype = {GGML_TYPE_I2_S: FTYPE_I2_S, QT.TQ1_0: gguf.LlamaFileType.MOSTLY_TQ1_0,
             QT.TQ2_0: gguf.LlamaFileType.MOSTLY_TQ2_0}[ternary]

    w = gguf.GGUFWriter(path, ARCH)
    w.add_name("onebit-fixture")
    w.add_vocab_size(m.vocab)
    w.add_context_length(4096)
    w.add_embedding_length(s.hidden)
    w.add_block_count(s.layers)
    w.add_feed_forward_length(s.intermediate)
    w.add_rope_dimension_count(s.head_dim)
    w.add_head_count(s.heads)
    w.add_head_count_kv(s.kv_heads)
    w.add_add_bos_token(True)
    w.add_layer_norm_rms_eps(s.rms_norm_eps)
    w.add_rope_freq_base(s.rope_theta)
    w.add_file_type(int(ftype))
    w.add_tokenizer_model("gpt2")
    if not official:
        w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    if official:
        w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["bos"])
    w.add_eos_token_id(ids["eos"])
    if official:
        w.add_pad_token_id(ids["eos"])
        w.add_chat_template(BITNET_CPP_CHAT_TEMPLATE)
    else:
        w.add_eot_token_id(ids["eot"])
        w.add_chat_template(CHAT_TEMPLATE)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    for gname, hname in name_map(m).items():
        if hname in m.codes:
            if ternary == GGML_TYPE_I2_S:
                raw = encode_i2s(m.codes[hname], float(m.scale[hname]))
                # Viewed as int8 so that GGUFWriter keeps the given shape instead of deriving it from a block size
                # it does not know; the type id is written as given.
                w.add_tensor(gname, raw.view(np.int8), raw_shape=list(m.codes[hname].shape),
                             raw_dtype=GGML_TYPE_I2_S)
            else:
                w.add_tensor(gname, gguf.quants.quantize(m.effective(hname).numpy(), ternary), raw_dtype=ternary)
        elif gname in ("token_embd.weight", "output.weight"):
            arr = embedding_array(m, hname, embd)
            w.add_tensor(gname, arr, raw_dtype=embd if embd not in (QT.F32, QT.F16) else None)
        else:
            w.add_tensor(gname, m.masters[hname].float().numpy())     # norms: F32
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(np.uint32(version).tobytes())


# ---------------------------------------------------------------------------------------------------- reading

class Reader(gguf.GGUFReader):
    """GGUFReader that also accepts I2_S tensors (type 36), which it would reject as an unknown type.

    Tensors of known types are built by GGUFReader itself; I2_S ones are collected in `i2s` as (rows, cols, raw
    bytes), n/4 + 32 bytes each (bitnet.cpp's ggml_nbytes for I2_S)."""

    def _build_tensors(self, start_offs, fields):
        self.i2s = {}
        known = []
        for field in fields:
            _, name_data, _, dims, raw_dtype, offset = field.parts
            if int(raw_dtype[0]) != GGML_TYPE_I2_S:
                known.append(field)
                continue
            cols, rows = int(dims[0]), int(dims[1])
            raw = self._get(int(start_offs + offset[0]), np.uint8, rows * cols // 4 + 32)
            self.i2s[str(bytes(name_data), encoding="utf-8")] = (rows, cols, np.array(raw))
        super()._build_tensors(start_offs, known)


def read_gguf(path: str):
    """(metadata dict, {name: (type id, float32 array [out, in] or [n])}, version) of a GGUF file."""
    r = Reader(path)
    meta = {}
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        meta[key] = field.contents()
    tensors = {}
    for t in r.tensors:
        tensors[t.name] = (int(t.tensor_type), gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
    for name, (rows, cols, raw) in r.i2s.items():
        tensors[name] = (GGML_TYPE_I2_S, decode_i2s(raw, rows, cols))
    version = int(r.fields["GGUF.version"].parts[-1][0])
    return meta, tensors, version


def verify_gguf(path: str, m: Model, tokenizer, *, ternary: int, embd: QT, official: bool, version: int):
    """Reads the file back and asserts it is the HF model: every ternary tensor dequantizes exactly to codes x
    scale, norms to the bf16 values, the embedding to within its type's precision (exactly for F32/BF16);
    metadata and tokenizer tables as intended. Returns the dequantized token embedding (and output, if any)."""
    meta, tensors, got_version = read_gguf(path)
    s = m.spec
    assert got_version == version
    a = ARCH
    expect = {
        "general.architecture": a, f"{a}.vocab_size": m.vocab, f"{a}.context_length": 4096,
        f"{a}.embedding_length": s.hidden, f"{a}.block_count": s.layers, f"{a}.feed_forward_length": s.intermediate,
        f"{a}.rope.dimension_count": s.head_dim, f"{a}.attention.head_count": s.heads,
        f"{a}.attention.head_count_kv": s.kv_heads, "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.model": "gpt2",
    }
    for k, v in expect.items():
        assert meta[k] == v, f"{path}: {k} = {meta[k]!r}, expected {v!r}"
    assert abs(meta[f"{a}.attention.layer_norm_rms_epsilon"] - s.rms_norm_eps) < 1e-12
    assert meta[f"{a}.rope.freq_base"] == s.rope_theta
    assert ("tokenizer.ggml.pre" in meta) == (not official)
    assert len(meta) == 24 or not official, f"{path}: {len(meta)} keys, the official file has 24"
    tokens, types, merges = vocab_tables(tokenizer, m.vocab)
    assert meta["tokenizer.ggml.tokens"] == tokens and meta["tokenizer.ggml.token_type"] == types
    assert meta["tokenizer.ggml.merges"] == merges

    names = name_map(m)
    assert set(tensors) == set(names), f"{path}: tensor names {sorted(set(tensors) ^ set(names))}"
    dequant_embd = {}
    for gname, hname in names.items():
        qtype, value = tensors[gname]
        if hname in m.codes:
            assert qtype == int(ternary), f"{gname}: type {qtype}"
            assert value.shape == tuple(m.codes[hname].shape)
            assert np.array_equal(value, m.effective(hname).numpy()), f"{path}: {gname} differs from HF"
        elif gname in ("token_embd.weight", "output.weight"):
            assert qtype == int(embd), f"{gname}: type {qtype}"
            ref = m.masters[hname].float().numpy()
            assert value.shape == ref.shape
            if embd in (QT.F32, QT.BF16):
                assert np.array_equal(value, ref)
            else:
                tol = {QT.F16: 1e-4, QT.Q8_0: 2e-2, QT.Q6_K: 4e-2}[embd] * np.abs(ref).max()
                assert np.abs(value - ref).max() <= tol, f"{gname}: error {np.abs(value - ref).max()}"
            dequant_embd[hname] = value
        else:
            assert qtype == int(QT.F32)
            assert np.array_equal(value, m.masters[hname].float().numpy()), f"{gname} differs"
    return dequant_embd
