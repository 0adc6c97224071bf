"""The text the fixture tokenizer is trained on, and the text prompts of the reference outputs.

Written for this project. It mixes prose, numbers, punctuation, contractions, code-like text, several kinds of
whitespace and a little non-ASCII, so that the byte-level BPE and the Llama-3 pre-tokenizer regex see every
branch they have (letters, digit triples, punctuation runs, newlines, trailing spaces).
"""

CORPUS = """\
The lighthouse keeper woke before dawn, as he had done for thirty-one years. He climbed the 114 steps of the
tower, wiped the salt from the great lens, and wrote the weather into his log: wind from the north-west, 12 knots,
visibility good. Nothing much ever happened on the island, and that was the way he liked it.

In the village across the water, the baker was already at work. She mixed flour, water, salt and yeast in a wide
wooden bowl, folded the dough twice, and let it rest while the oven warmed. "Bread can't be hurried," she told
her apprentice, who was young and always in a hurry. "You'll learn that the dough has its own clock."

A river runs through the valley below the hills. In spring it carries melted snow from the mountains; in summer
it slows to a lazy green ribbon where children swim and old men fish. The bridge that crosses it was built in 1887
and repaired in 1952, 1979 and 2004. Each repair left a slightly different colour of stone.

Numbers are everywhere if you look for them: 3 apples, 17 pears, 256 bytes in a block, 4096 tokens in a context,
1,000,000 stars on a clear night (or so it seems). Prices rose by 2.5% last year; the train leaves at 07:45 and
arrives at 09:10. Call 555-0199 for details, or write to the office at 42 Harbour Road.

def greet(name):
    # say hello to someone
    return f"Hello, {name}!"

for i in range(10):
    print(greet("world"), i * i)

Questions are good. Why is the sky blue? Why do cats purr? What's the difference between weather and climate?
Isn't it strange that we'd rather ask a machine than a neighbour? They're all fair questions, and we've only
just started to answer some of them. I'm sure you'd agree.

The café on the corner serves crème brûlée, jalapeño soup and a very good naïve little wine. Zoë ordered the
soup; François had the dessert. Über alles, the coffee was excellent. Señor Núñez paid the bill — €23.50 — and
left a generous tip. 東京 and Москва are far away, but the menu had a dish from each.

Programming languages differ in many ways. Some are compiled, others interpreted; some have garbage collection,
others ask the programmer to manage memory. Swift, C, Python and Rust each make different trade-offs between
speed, safety and ease of use. A good engineer knows when each one is the right tool.

    Indented lines, tabs\tand trailing spaces   
are part of real text too.

Line one.
Line two!
Line three?

The small robot rolled across the kitchen floor, bumped into the table leg, turned left, and tried again. It was
learning, slowly, one bump at a time. By evening it could reach the door without touching anything at all.

Once upon a time there was a king who had three daughters. The eldest loved gold, the second loved music, and the
youngest loved the sea. When the king grew old he asked each of them how much they loved him, and the youngest
said: "As much as meat loves salt." He was angry at first, but later he understood.

Rain fell all afternoon. The gutters overflowed, the cat refused to go outside, and the radio played old songs
that nobody remembered the words to. At six o'clock the clouds broke and the evening light turned everything gold.
"""

# Prompts tokenized with the fixture tokenizer (the post-processor adds <|begin_of_text|>).
TEXT_PROMPTS = [
    "The lighthouse keeper",
    "In the village across the water, the baker was already at work. She mixed flour, water, salt and",
    "Numbers: 3 apples, 17 pears, 2.5% and 07:45.",
]

# A chat rendered with the HF chat template of bitnet-b1.58-2B-4T (see tokenizer.CHAT_TEMPLATE).
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Why is the sky blue?"},
]
