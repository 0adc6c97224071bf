"""Writes the tokenizer fixtures under Tests/Fixtures/tokenizers/.

Trains a few small byte-level BPE tokenizers with Hugging Face `tokenizers` on text written for this script, then
records what `tokenizers` itself returns for a few hundred varied strings: ids with and without special tokens,
decoded text, decoded random id sequences, and the pieces the known pre-tokenizer regexes cut a fuzz corpus into.
The Swift tests replay every case and compare exactly.

Run from the repository root, after `tools/setup_venv.sh`:

    tools/.venv/bin/python tools/make_tokenizer_fixtures.py

`--synthetic-large PATH` also writes a synthetic tokenizer.json with a Llama-3 sized vocabulary (128,256 ids,
~280k merges) to PATH, for timing the loader; it is not a fixture and is not committed.
"""

import venv_guard  # noqa: F401  (re-runs this script inside tools/.venv)
import argparse
import json
import os
import random

import regex
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tokenizers")

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|reserved_special_token_4|>",
    "<|eot_id|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(5, 12)]

# Training text written for this file. It mixes prose, code, numbers and several scripts so that the learned merges
# cover more than ASCII.
CORPUS = """
The lighthouse keeper wrote in his log every evening. It's a habit he'd kept for thirty-one years, and he'll keep
it until the lamp goes dark. "We're never alone out here," he said; "the sea talks, and I've learned to listen."
On Tuesday 14 March 2023 the wind rose to 87 km/h, the barometer fell to 968.5 hPa and the supply boat didn't come.
He counted the cans: 12 of beans, 7 of peaches, 3 of soup. That's 22 cans, enough for 11 days at two a day.
THE STORM'S NOISE WAS LOUD. They'd said it wouldn't be. You'll see, I'm sure they're wrong. We've been here before.
Tokenizers split text into pieces; byte-level BPE first maps every byte to a printable character, then merges the
most frequent adjacent pairs. Numbers like 1234567890 are cut into groups of at most three digits by some patterns.
def tokenize(text: str) -> list[int]:
    return [vocab[piece] for piece in split(text)]  # TODO: handle errors
for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }
if x >= 10 && y != 0 { return x / y } else { return -1 }
Email: keeper@lighthouse.example, URL: https://example.org/path?query=1&lang=en#top
The café on the corner serves crème brûlée and piña colada; naïve visitors order both. Façade, jalapeño, Zoë.
Die Straße ist nass, und die Bäume wiegen sich im Wind. Über den Hügeln zieht ein Gewitter auf.
Le vent souffle fort ce soir, et les vagues frappent les rochers sans relâche.
El faro ilumina la costa cada noche; los marineros lo saben desde hace siglos.
Ветер дует с моря, и старый смотритель зажигает лампу каждый вечер.
Ο φάρος φωτίζει τη θάλασσα και οι ναύτες βρίσκουν τον δρόμο τους.
灯塔守护者每天晚上都会写日记。海风很大，但他从不害怕。我们一起看日出吧。
灯台守は毎晩日記を書きます。海はとても静かで、星がきれいです。ありがとうございます。
등대지기는 매일 밤 일기를 씁니다. 바다는 조용하고 별이 아름답습니다. 감사합니다.
حارس المنارة يكتب في دفتره كل مساء، والبحر هادئ الليلة. شكرا جزيلا.
प्रकाशस्तंभ का रखवाला हर शाम अपनी डायरी लिखता है। समुद्र आज शांत है। धन्यवाद।
שומר המגדלור כותב ביומן שלו בכל ערב. הים שקט הלילה.
ผู้ดูแลประภาคารเขียนบันทึกทุกเย็น ทะเลสงบในคืนนี้
Emoji: 😀 😃 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🚀🚀🚀 ✨ 🇫🇷 🇯🇵
Tabs\tand\tspaces    mixed   with
newlines\r\nand carriage returns\r\n\r\n and more.
""" * 3


def build_llama3(vocab_size=1200):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return tok


def build_gpt2(add_prefix_space, vocab_size=900):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer)
    return tok


def build_qwen2(vocab_size=1000):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer)
    tok.add_special_tokens(
        [AddedToken("<|im_start|>", special=True, normalized=False), AddedToken("<|im_end|>", special=True)]
    )
    return tok


def build_normalized(vocab_size=800):
    """NFC normalizer plus added tokens exercising single_word, lstrip, rstrip and normalized matching."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFC()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer)
    tok.add_tokens(
        [
            AddedToken("café", normalized=True),
            AddedToken("keeper", single_word=True, normalized=False),
            AddedToken("lamp", single_word=True, normalized=True),
            AddedToken("<tool>", rstrip=True, normalized=False),
            AddedToken("hello world", normalized=False),
        ]
    )
    tok.add_special_tokens(
        [
            AddedToken("[MASK]", lstrip=True, special=True, normalized=False),
            AddedToken("<sep>", lstrip=True, rstrip=True, special=True, normalized=False),
            AddedToken("<|endoftext|>", special=True, normalized=False),
        ]
    )
    return tok


def legacy_merges(tokenizer_json):
    """Rewrites merges into the older "a b" string form, which tokenizer.json files of many checkpoints use."""
    data = json.loads(tokenizer_json)
    data["model"]["merges"] = [" ".join(pair) if isinstance(pair, list) else pair for pair in data["model"]["merges"]]
    return json.dumps(data, ensure_ascii=False)


def test_strings(rng):
    handmade = [
        "",
        " ",
        "  ",
        "\n",
        "\n\n\n",
        "\r\n",
        "\r\n\r\n",
        "\t",
        "a",
        "Hello, world!",
        "Hello world",
        " Hello world",
        "  leading and trailing  ",
        "It's, I'm, you're, we've, she'll, he'd, don't",
        "IT'S, I'M, YOU'RE, WE'VE, SHE'LL, HE'D, DON'T",
        "It'S I'M We'Ve They'Ll 'S 'll 'LL 'Re",
        "'s's's 'x 'sx ''s",
        "the lighthouse keeper wrote in his log",
        "1 12 123 1234 12345 123456 1234567",
        "3.14159 2,718 1e10 -42 +7 0x1F",
        "٣٤٥ ١٢٣٤ ²³ ½ Ⅻ ⅷ",
        "tabs\tand\t\ttabs",
        "line one\nline two\r\nline three\rline four",
        "spaces    then\n    indented\n\tcode",
        "trailing newline\n",
        "trailing spaces   ",
        "a\u00a0b\u2009c\u3000d\u2028e\u0085f",
        "\u001c\u001d\u001e\u001f separators",
        "\x00\x01\x7f control",
        "café crème brûlée",
        "cafe\u0301 cre\u0300me",
        "e\u0301\u0301\u0301 a\u0308",
        "Straße Über ÄÖÜ äöü",
        "Ветер дует с моря",
        "Ο φάρος φωτίζει",
        "灯塔守护者每天晚上都会写日记。",
        "灯台守は毎晩日記を書きます。",
        "등대지기는 매일 밤 일기를 씁니다.",
        "\u1100\u1161\u11a8 jamo",
        "حارس المنارة يكتب في دفتره",
        "प्रकाशस्तंभ का रखवाला",
        "ผู้ดูแลประภาคาร",
        "שומר המגדלור",
        "😀😃😄😁",
        "👍 👍🏻 👍🏽 👍🏿",
        "👨‍👩‍👧‍👦 family",
        "🏳️‍🌈 flag 🇫🇷🇯🇵",
        "❤️ ❤ ♥",
        "a😀b c👍🏽d",
        "<|begin_of_text|>Hello",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
        "text <|eot_id|> more <|end_of_text|>",
        "<|begin_of_text|",
        "<|reserved_special_token_3|><|reserved_special_token_11|>",
        "<|endoftext|>",
        "a<|endoftext|>b",
        "  <|endoftext|>  ",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
        "[MASK]",
        "word [MASK] word",
        "word    [MASK]",
        "x<sep>y x  <sep>  y",
        "<tool>   call",
        "keeper keepers gatekeeper keeper.",
        "the keeper_ keeper1 (keeper)",
        "lamp lamps lamp! alamp",
        "café cafe\u0301 cafés",
        "hello world hello  world",
        "def f(x):\n    return x * 2\n",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        "https://example.org/path?query=1&lang=en#top",
        "!!!???...,,,;;;",
        "((()))[[[]]]{{{}}}",
        "$$$ %%% ^^^ &&&",
        "a" * 300,
        "supercalifragilisticexpialidocious" * 8,
        "ab" * 200,
        "1" * 50,
        " " * 40 + "x",
        "\n" * 20,
        "x" + "\t " * 30,
        "Ǆ ǅ ǆ ſ 'ſ K Å",
        "ﬁ ﬂ ﬀ",
        "ǅungla",
        "\ufeffBOM start",
        "\u200b zero width \u200d joiner",
        "mixed中文and English词",
        "数字123和456",
        "x²+y²=z²",
    ]
    pieces = [
        "hello",
        " world",
        "It's",
        " THEY'LL",
        "12345",
        " 678",
        "\n",
        "\r\n",
        "\t",
        "   ",
        "  \n  ",
        "!",
        "?!",
        " ...",
        "café",
        "Über",
        "中文",
        "日本語",
        "한국어",
        "العربية",
        "हिन्दी",
        "ไทย",
        "😀",
        "👍🏽",
        "👨‍👩‍👧",
        "e\u0301",
        "<|eot_id|>",
        "<|begin_of_text|>",
        "<|endoftext|>",
        "[MASK]",
        " keeper ",
        "lamp",
        "<tool>",
        "٣٤",
        "Ⅻ",
        "_",
        "'s",
        "'D",
        "\u00a0",
        "\u3000",
        "x",
        "QQ",
    ]
    generated = []
    for _ in range(230):
        count = rng.randint(1, 9)
        generated.append("".join(rng.choice(pieces) for _ in range(count)))
    return handmade + generated


def fuzz_strings(rng):
    pool = (
        list("aZé'sStTmMdDlLrRvVe ")
        + [" ", " ", " ", "\t", "\n", "\r", "\r\n", "\u000b", "\u000c"]
        + list("0123456789")
        + ["٣", "²", "½", "Ⅻ", "𝟙"]
        + list("!?.,;:-_()[]{}<>\"#$%&*+/=@\\^`|~")
        + ["\u001c", "\u001f", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2009", "\u200a", "\u200b", "\u2028"]
        + ["\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "\u180e"]
        + ["ſ", "K", "ǅ", "ß", "ﬁ", "İ", "ı"]
        + ["中", "文", "あ", "カ", "한", "ㄱ", "ب", "ع", "क", "्", "ि", "ก", "ั", "א"]
        + ["\u0301", "\u0308", "\u20dd", "\u200d", "\ufe0f"]
        + ["😀", "👍", "🏽", "🇫", "🇷", "❤", "✨", "€", "£", "©", "™", "°"]
        + ["\x00", "\x01", "\x7f", "\u00ad", "\u0600", "\ue000", "\U000f0000"]
    )
    out = []
    for _ in range(500):
        length = rng.randint(1, 24)
        out.append("".join(rng.choice(pool) for _ in range(length)))
    return out


def encode_cases(tok, strings):
    cases = []
    for s in strings:
        with_special = tok.encode(s, add_special_tokens=True).ids
        without = tok.encode(s, add_special_tokens=False).ids
        cases.append(
            {
                "text": s,
                "ids": with_special,
                "ids_no_special": without,
                "decoded": tok.decode(with_special, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True),
            }
        )
    return cases


def random_decode_cases(tok, rng):
    size = tok.get_vocab_size(with_added_tokens=True)
    cases = []
    for _ in range(40):
        ids = [rng.randrange(size) for _ in range(rng.randint(1, 12))]
        cases.append(
            {
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    # Single bytes of multi-byte characters, to exercise the streaming decoder's hold-back.
    # sorted: alphabet() comes back in hash order, which would make the fixtures differ from run to run.
    byte_ids = [tok.token_to_id(c) for c in sorted(pre_tokenizers.ByteLevel.alphabet())]
    for _ in range(20):
        ids = [rng.choice(byte_ids) for _ in range(rng.randint(1, 10))]
        cases.append(
            {
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    return cases


def gguf_form(tok):
    """The tokenizer.ggml.* metadata a GGUF converter writes for a Llama-3 style tokenizer."""
    data = json.loads(tok.to_str())
    size = tok.get_vocab_size(with_added_tokens=True)
    tokens = [tok.id_to_token(i) for i in range(size)]
    special = {t["id"] for t in data["added_tokens"] if t["special"]}
    token_types = [3 if i in special else 1 for i in range(size)]
    merges = [" ".join(pair) for pair in data["model"]["merges"]]
    return {
        "model": "gpt2",
        "pre": "llama-bpe",
        "tokens": tokens,
        "merges": merges,
        "token_type": token_types,
        "bos_token_id": tok.token_to_id("<|begin_of_text|>"),
        "eos_token_id": tok.token_to_id("<|end_of_text|>"),
        "eot_token_id": tok.token_to_id("<|eot_id|>"),
        "add_bos_token": True,
    }


def pretokenizer_cases(rng, strings):
    patterns = {"llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN, "gpt2": GPT2_PATTERN}
    result = {}
    for name, pattern in patterns.items():
        splitter = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
        compiled = regex.compile(pattern)
        cases = []
        disagreements = 0
        for s in strings:
            pieces = [piece for piece, _ in splitter.pre_tokenize_str(s)]
            if pieces != compiled.findall(s):
                disagreements += 1
            cases.append({"text": s, "pieces": pieces})
        print(f"{name}: {len(cases)} fuzz strings, Python regex disagrees with tokenizers on {disagreements}")
        result[name] = {"pattern": pattern, "cases": cases}
    return result


def synthetic_large(path, rng):
    """A tokenizer.json shaped like Llama-3's (128,000 model tokens, ~280k merges, 256 specials)."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    alphabet.sort()
    vocab = {c: i for i, c in enumerate(alphabet)}
    tokens = list(alphabet)
    merges = []
    while len(tokens) < 128000:
        a = tokens[rng.randrange(len(tokens))]
        b = tokens[rng.randrange(min(len(tokens), 2000))]
        if len(a) + len(b) > 16 or a + b in vocab:
            continue
        vocab[a + b] = len(tokens)
        tokens.append(a + b)
        merges.append(f"{a} {b}")
    for token in tokens[len(alphabet):]:
        if len(merges) >= 280000:
            break
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab and len(merges) < 280000:
                merges.append(f"{left} {right}")
    added = []
    for i in range(256):
        content = f"<|reserved_special_token_{i}|>"
        added.append(
            {
                "id": 128000 + i,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": vocab,
            "merges": merges,
        },
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
    Tokenizer.from_file(path)  # proves the file is valid for the reference implementation
    print(f"wrote {path}: {len(vocab)} model tokens, {len(merges)} merges, {os.path.getsize(path)} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-large", metavar="PATH", help="also write a 128k-vocab tokenizer.json here")
    args = parser.parse_args()

    rng = random.Random(20260501)
    os.makedirs(OUT_DIR, exist_ok=True)
    strings = test_strings(rng)

    llama3 = build_llama3()
    gpt2 = build_gpt2(add_prefix_space=False)
    gpt2_prefix = Tokenizer.from_str(gpt2.to_str())
    gpt2_prefix.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tokenizers = {
        # Llama-3 layout, merges in the "a b" string form; BOS added by the post-processor.
        "llama3": (
            llama3,
            legacy_merges(llama3.to_str()),
            {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"},
        ),
        "gpt2": (gpt2, gpt2.to_str(), {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}),
        "gpt2_prefix_space": (gpt2_prefix, gpt2_prefix.to_str(), None),
        # Qwen2 pre-tokenizer, merges in the ["a", "b"] pair form.
        "qwen2_pairs": (build_qwen2(), None, {"eos_token": {"content": "<|im_end|>", "special": True}}),
        "normalized_added": (build_normalized(), None, None),
    }
    for name, (tok, text, config) in tokenizers.items():
        text = text if text is not None else tok.to_str()
        reloaded = Tokenizer.from_str(text)  # the recorded outputs come from exactly the file the tests load
        with open(os.path.join(OUT_DIR, f"{name}.tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(text)
        cases = {
            "name": name,
            "vocabulary_size": reloaded.get_vocab_size(with_added_tokens=True),
            "tokenizer_config": config,
            "encode": encode_cases(reloaded, strings),
            "decode": random_decode_cases(reloaded, rng),
        }
        with open(os.path.join(OUT_DIR, f"{name}.cases.json"), "w", encoding="utf-8") as f:
            json.dump(cases, f, ensure_ascii=False, separators=(",", ":"))
        print(f"{name}: vocabulary {cases['vocabulary_size']}, {len(strings)} strings")

    with open(os.path.join(OUT_DIR, "llama3.gguf.json"), "w", encoding="utf-8") as f:
        json.dump(gguf_form(llama3), f, ensure_ascii=False, separators=(",", ":"))

    with open(os.path.join(OUT_DIR, "pretokenizer.cases.json"), "w", encoding="utf-8") as f:
        json.dump(pretokenizer_cases(rng, fuzz_strings(rng)), f, ensure_ascii=False, separators=(",", ":"))

    if args.synthetic_large:
        synthetic_large(args.synthetic_large, rng)


if __name__ == "__main__":
    main()
