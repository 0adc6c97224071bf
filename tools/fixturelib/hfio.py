"""Writing HF fixture directories and checking that transformers loads them as written."""

import os

import torch
from safetensors.torch import save_file

from . import tok as tokmod
from .weights import Model, hf_config, is_ternary_name, stored_tensors, unpack_rows


def write_hf(m: Model, tokenizer, directory: str) -> None:
    """config.json, model.safetensors (or shards + index), tokenizer files and generation_config.json."""
    os.makedirs(directory, exist_ok=True)
    ids = tokmod.special_ids(tokenizer)
    tokmod.dump_json(hf_config(m, ids), os.path.join(directory, "config.json"))
    tensors = stored_tensors(m)
    if m.spec.shards <= 1:
        save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    else:
        write_shards(tensors, m.spec.shards, directory)
    tokmod.write_tokenizer_files(tokenizer, directory)


def write_shards(tensors: dict, count: int, directory: str) -> None:
    """Splits the tensors in order into `count` files named as save_pretrained names them, plus the index."""
    names = list(tensors)
    per = -(-len(names) // count)
    weight_map, total = {}, 0
    for k in range(count):
        fname = f"model-{k + 1:05d}-of-{count:05d}.safetensors"
        part = {n: tensors[n] for n in names[k * per:(k + 1) * per]}
        save_file(part, os.path.join(directory, fname), metadata={"format": "pt"})
        for n, t in part.items():
            weight_map[n] = fname
            total += t.numel() * t.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    tokmod.dump_json(index, os.path.join(directory, "model.safetensors.index.json"))


def load_hf(directory: str):
    """Loads a fixture the normal way, in fp32, so the BitNet quantizer of transformers builds the model."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    return model


def verify_loaded(m: Model, model) -> None:
    """Asserts that what transformers holds after loading equals what was written, for each layout.

    autobitlinear/offline: weight is the unpacked ternary (fp32) and weight_scale the stored bf16 multiplier.
    bitlinear: weight stays packed uint8 (unpacked at every forward), weight_scale is the stored bf16 divisor.
    autobitlinear/online: weight is the bf16 master, ternarized by WeightQuant at every forward."""
    from transformers.integrations.bitnet import AutoBitLinear, BitLinear, WeightQuant

    spec = m.spec
    assert model.config.quantization_config.linear_class == spec.linear_class
    for name, master in m.masters.items():
        if not is_ternary_name(name):
            param = model.get_parameter(name) if name != "lm_head.weight" else model.lm_head.weight
            assert param.dtype == torch.float32
            assert torch.equal(param, master.float()), f"{spec.name}: {name} differs after loading"
            continue
        module = model.get_submodule(name[:-len(".weight")])
        codes, scale = m.codes[name], m.scale[name]
        if spec.linear_class == "bitlinear":
            assert isinstance(module, BitLinear), type(module)
            assert module.weight.dtype == torch.uint8
            assert torch.equal(unpack_rows(module.weight), codes), f"{spec.name}: {name} codes differ"
            assert torch.equal(module.weight_scale.float(), m.stored[name].reshape(1)), f"{name} scale"
        elif spec.mode == "offline":
            assert isinstance(module, AutoBitLinear) and not module.online_quant
            assert torch.equal(module.weight, codes.float()), f"{spec.name}: {name} codes differ"
            assert torch.equal(module.weight_scale, m.stored[name].reshape(1)), f"{spec.name}: {name} scale differs"
        else:
            assert isinstance(module, AutoBitLinear) and module.online_quant
            assert torch.equal(module.weight, master.float()), f"{spec.name}: {name} master differs"
            w = WeightQuant.apply(module.weight)
            assert torch.equal(w, codes.float() / (1.0 / scale)), f"{spec.name}: {name} online ternary differs"
    emb = model.get_input_embeddings().weight
    if spec.tied:
        assert model.lm_head.weight.data_ptr() == emb.data_ptr(), f"{spec.name}: lm_head is not tied"
    else:
        assert model.lm_head.weight.data_ptr() != emb.data_ptr(), f"{spec.name}: lm_head is tied"
    assert emb.shape[0] == m.vocab
