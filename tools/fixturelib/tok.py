"""A tiny Llama-3-style byte-level BPE tokenizer, trained with HF `tokenizers` on fixturelib.corpus.

Its structure is that of bitnet-b1.58-2B-4T's tokenizer.json (the Llama-3 one): a Split pre-tokenizer with the
tiktoken regex followed by ByteLevel without its own regex, a BPE model with `ignore_merges`, a ByteLevel decoder,
and a post-processor that prepends <|begin_of_text|>. Special tokens come after the learned vocabulary, as
128000+ do in the real file (bitnet-b158.md section 1).
"""

import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .corpus import CORPUS

# tiktoken / Llama-3 pre-tokenizer pattern (bitnet-b158.md section 1; microsoft/BitNet gpu/tokenizer.py pat_str).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
EOT = "<|eot_id|>"

# Same order as Llama 3 (ids 128000..128009 there): bos, eos, reserved 0-3, header start/end, reserved 4, eot;
# two more reserved ones so that some control tokens are not used by anything.
SPECIAL_TOKENS = [
    BOS, EOS,
    "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
    "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_4|>", EOT,
    "<|reserved_special_token_5|>", "<|reserved_special_token_6|>",
]

# The chat template of microsoft/bitnet-b1.58-2B-4T's tokenizer_config.json (bitnet-b158.md section 1.2, variant 2).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim + "
    "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)

# The chat template bitnet.cpp's converter writes into its GGUF files (bitnet-b158.md section 1.2, variant 3).
BITNET_CPP_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)

# Number of learned tokens (256 byte tokens + merges); the special tokens come on top.
LEARNED_VOCAB = 368


def train_tokenizer() -> Tokenizer:
    """Trains the fixture tokenizer. Deterministic: BPE training on a fixed text breaks ties by order."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=LEARNED_VOCAB,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator([CORPUS], trainer=trainer)
    # The trained model is rebuilt by the trainer; keep Llama 3's ignore_merges (whole words that are in the
    # vocabulary are taken as one token before any merge is tried).
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(data))
    tok.add_special_tokens(SPECIAL_TOKENS)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0",
            pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, bos_id)],
        ),
    ])
    return tok


def special_ids(tok: Tokenizer) -> dict:
    """Ids of the tokens the configs refer to."""
    return {"bos": tok.token_to_id(BOS), "eos": tok.token_to_id(EOS), "eot": tok.token_to_id(EOT)}


def tokenizer_config(tok: Tokenizer) -> dict:
    """tokenizer_config.json in the shape of 2B-4T's (Llama-3 style: added_tokens_decoder + chat_template)."""
    added = {}
    for name in SPECIAL_TOKENS:
        added[str(tok.token_to_id(name))] = {
            "content": name, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True,
        }
    return {
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "eos_token": EOT,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def generation_config(tok: Tokenizer) -> dict:
    """generation_config.json: eos is the list [<|end_of_text|>, <|eot_id|>] as in 2B-4T."""
    import transformers
    ids = special_ids(tok)
    return {
        "_from_model_config": True,
        "bos_token_id": ids["bos"],
        "eos_token_id": [ids["eos"], ids["eot"]],
        "transformers_version": transformers.__version__,
    }


def write_tokenizer_files(tok: Tokenizer, directory: str) -> None:
    """Writes tokenizer.json, tokenizer_config.json and generation_config.json into an HF fixture directory."""
    tok.save(os.path.join(directory, "tokenizer.json"), pretty=True)
    dump_json(tokenizer_config(tok), os.path.join(directory, "tokenizer_config.json"))
    dump_json(generation_config(tok), os.path.join(directory, "generation_config.json"))


def dump_json(obj, path: str) -> None:
    """Stable JSON: two-space indent, keys in insertion order, trailing newline."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def vocab_tables(tok: Tokenizer, vocab_size: int):
    """Token strings, GGUF token types (1 normal, 3 control) and merges, as a GGUF tokenizer section stores them.

    Ids past the tokenizer (a padded model vocabulary) get placeholder names, as llama.cpp's converters write."""
    data = json.loads(tok.to_str())
    id_to_token = {i: t for t, i in data["model"]["vocab"].items()}
    special = {t["id"]: t["content"] for t in data["added_tokens"]}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in special:
            tokens.append(special[i])
            types.append(3)
        elif i in id_to_token:
            tokens.append(id_to_token[i])
            types.append(1)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(5)  # unused
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return tokens, types, merges
