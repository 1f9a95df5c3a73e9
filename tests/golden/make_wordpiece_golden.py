#!/usr/bin/env python3
"""Goldens for graft::data::BertTokenizer from Hugging Face's `tokenizers` (what BertTokenizerFast runs).

Needs: python3 -m pip install tokenizers   (written with tokenizers 0.23.3)
       the all-MiniLM-L6-v2 assets: scripts/fetch-assets.sh
Run:   python3 tests/golden/make_wordpiece_golden.py
Writes tests/golden/wordpiece/golden.json. Deterministic: fixed lists plus seeded random combinations.

Contents:
  single      texts encoded one by one, no truncation or padding: ids, token types, attention mask
              and decode(ids) (special tokens skipped)
  pairs       text pairs with truncation (longest_first / only_first / only_second, right or left)
  batches     padded batches (longest, fixed length, pad_to_multiple_of, left padding)
  defaults    texts encoded with tokenizer.json's own truncation and padding (128, fixed)
  code_points every Unicode scalar value through each normalizer step alone and the pre-tokenizer:
              ranges removed by clean_text, turned into ' ', isolated as punctuation or dropped as
              whitespace by the pre-tokenizer, and the code points that strip_accents or lowercase
              change, with what they become
"""
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer, normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.environ.get("GRAFT_ASSETS_DIR", os.path.join(REPO, "assets", "all-MiniLM-L6-v2"))
OUT = os.path.join(HERE, "wordpiece", "golden.json")

FIXED = [
    "", " ", "   \t\n  ", "\u3000\u00a0\u2003", "\n", "Hello, world!", "HELLO World hElLo",
    "The quick brown fox jumps over the lazy dog.", "unaffable", "Unaffable UNAFFABLE unaffableness",
    "I can't believe it's not butter!", "Don't do that; it's 5:30 p.m. (really).",
    # accents and combining marks
    "Café naïve résumé coöperate façade jalapeño", "Crème brûlée à la mode", "Ångström Øresund Æsir ßtraße",
    "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327", "Zoë's piñata", "A\u030a\u0323 q\u0307\u0323 x\u0334\u0335",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357",
    "Ğüşıöç İstanbul ISTANBUL ıi", "Việt Nam Tiếng Việt", "Łódź Kraków Gdańsk", "Ελληνικά ΑΘΗΝΑ άέήίόύώ ΐΰ",
    # CJK, Japanese, Korean
    "北京欢迎你", "我爱自然语言处理。", "中文English混合mixed", "𠀀𠀁 𪜀 𫝀 𫠠 𬺰 丽", "㐀㐁 䶵 鿿 龥",
    "日本語のテキストです。", "ひらがな カタカナ ｶﾀｶﾅ", "東京タワーに行きました！", "한국어 텍스트입니다", "안녕하세요, 세계!",
    "ＡＢＣ１２３ｆｕｌｌｗｉｄｔｈ", "「引用」『二重』【括弧】〈山括弧〉", "、。・ー～",
    # other scripts
    "Привет, мир! Ёлка ЁЛКА", "Здравствуйте, как дела?", "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "שָׁלוֹם עוֹלָם",
    "שלום עולם!", "नमस्ते दुनिया", "हिन्दी भाषा", "สวัสดีครับ", "ሰላም ዓለም", "Բարեւ աշխարհ", "გამარჯობა",
    "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "ᓀᐦᐃᔭᐍᐏᐣ", "ꦧꦱꦗꦮ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉", "ﬁ ﬂ ﬀ ﬃ", "Ⅻ ⅷ ① ⑳",
    # emoji
    "I love it 😀😃😄!", "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷", "❤️ ☕ ✨ ⭐", "🥰🦄🫠", "emoji😀inside😀words",
    # punctuation of many scripts and symbols
    "Wait... what?!", "¿Qué? ¡Sí!", "«guillemets» „Anführung“ ‚single‘", "“smart quotes” ‘single’",
    "em—dash en–dash ‐ ‑ ‒ ― ⁓", "a/b\\c|d~e^f`g", "$100 + €50 = £?? ¥ ₹ ₿", "x<y>z=w", "#hashtag @mention &amp;",
    "100% (approx.) [citation needed] {curly}", "§ ¶ † ‡ • ‣ ′ ″ ‰ ‱", "፡ ። ፣ ፤ ፥", "؟ ، ؛ ٪ ۔", "। ॥ ৷",
    "‽ ⁂ ⸘ ⸮ ⁇", "℃ ™ © ® ° ± × ÷", "∀x∈ℝ: x² ≥ 0", "→ ← ↑ ↓ ⇒ ⇔", "♠♣♥♦ ♪♫",
    # numbers, URLs, code
    "3.14159 2,718 1e-10 -42 +7", "Call 555-123-4567 or +1 (800) 555-0199", "1st 2nd 3rd 4th 21st",
    "https://www.example.com/path?query=1&b=two#frag", "mailto:someone@example.org", "C:\\Program Files\\app.exe",
    "def f(x): return x**2 # comment", "snake_case camelCase PascalCase kebab-case", "v1.2.3-beta+build.7",
    "2024-01-31T12:34:56Z", "0x1F600 0b1010 0o777", "١٢٣ ٤٥٦ ۷۸۹ १२३ ๑๒๓",
    # control, format and zero-width characters
    "tab\there", "new\nline\r\nwindows", "nul\x00char", "bell\x07 and \x1b[31mansi\x1b[0m", "del\x7fchar",
    "\x85next line", "vertical\x0btab form\x0cfeed", "zero\u200bwidth\u200cnon\u200djoiner", "\ufeffbom at start",
    "soft\u00adhyphen", "rtl\u200fmark\u200eltr", "word\u2060joiner", "replacement\ufffdchar", "private\ue000use",
    "line\u2028sep para\u2029sep", "mongolian\u180evowel", "\u0378unassigned\u0379", "\U000e0001tag",
    "Arabic\u0890pound \u08e2 new format", "\u061dnew punct\u2e4f",
    # special tokens in the text
    "[CLS] hello [SEP]", "[MASK] is a mask", "[mask] is lower", "a[MASK]b", "[UNK][PAD][CLS][SEP]",
    "[[MASK]]", "[CLS", "CLS]", "[ CLS ]", "Hello [MASK]!", "[MASK][MASK] [MASK]", "x [SEP] y [SEP] z",
    # words near and beyond max_input_chars_per_word (100)
    "a" * 99, "a" * 100, "a" * 101, "b" * 150 + " short", "supercalifragilisticexpialidocious" * 3,
    "é" * 100, "é" * 101, "漢" * 120, "word " + "x" * 200 + " word",
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "hippopotomonstrosesquippedaliophobia floccinaucinihilipilification",
    # mixed and odd spacing
    "  leading and trailing  ", "multiple     spaces", "a\u2000b\u2001c\u2002d\u2009e\u202ff\u205fg",
    "MiXeD CaSe WoRdS", "ALLCAPS", "lowercase", "Title Case Words", "tHE rEVERSE", "ǅ ǈ ǋ ǲ",
    "x" * 20 + "!" * 20, "...", "!!!", "???", "—", "¡", "a" * 99 + "é",
]

WORDS = [
    "the", "transfer", "learning", "tensor", "engine", "GRU", "attention", "BERT", "fine-tuning", "embedding",
    "Paris", "naïve", "café", "Ångström", "straße", "İstanbul", "東京", "北京", "한국", "日本語", "カタカナ",
    "Москва", "Ελλάδα", "القاهرة", "ירושלים", "मुंबई", "กรุงเทพ", "😀", "👍🏽", "🇯🇵", "42", "3.14", "1,000,000",
    "https://ex.am/ple", "user@mail.com", "C++20", "don't", "rock'n'roll", "state-of-the-art", "e.g.", "U.S.A.",
    "unbelievable", "antidisestablishment", "xylophone", "qwertyuiop", "zzz", "[MASK]", "[SEP]", "[mask]",
    "e\u0301", "a\u0308\u0304", "ﬁne", "①", "Ⅻ", "ＡＢＣ", "ǅemal", "ΣΊΣΥΦΟΣ",
]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "", ", ", ". ", "! ", "? ", "; ", " - ", "\u3000", "\u00a0",
              "\u200b", "\x00", "\x07", "\r\n", " / ", "…", "、", "。", "؟ ", "«", "»"]
CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
         "àáâãäåçèéêëìíîïñòóôõöùúûüýÿßøæœ"
         "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΣΩ"
         "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЁЖ"
         "你好世界中文字漢語あいうえおアイウエオ가나다라마바사"
         "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”‘’—–…·•"
         "\u0301\u0300\u0308\u0327\u0303\u064e\u05b8\u093f"
         "😀🎉🔥💡🚀 \t\n\u200b\u00ad\x00\x7f\ufffd")


def random_texts(rng, count):
    texts = []
    for i in range(count):
        kind = i % 3
        if kind == 0:  # words and separators
            n = rng.randint(1, 14)
            texts.append("".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(n)))
        elif kind == 1:  # character soup
            n = rng.randint(1, 40)
            texts.append("".join(rng.choice(CHARS) for _ in range(n)))
        else:  # case and accent games on a fixed sentence
            base = rng.choice(FIXED[5:60])
            texts.append("".join(c.upper() if rng.random() < 0.3 else c for c in base))
    return texts


def encoding_dict(e):
    return {"ids": e.ids, "type_ids": e.type_ids, "mask": e.attention_mask}


def code_point_sweep():
    """Each normalizer step alone over every scalar value, and the pre-tokenizer's classes."""
    def step(**flags):
        options = dict(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False)
        options.update(flags)
        return normalizers.BertNormalizer(**options)

    clean, strip, lower, chinese = step(clean_text=True), step(strip_accents=True), step(lowercase=True), step(
        handle_chinese_chars=True)
    pre = pre_tokenizers.BertPreTokenizer()
    sets = {"removed": [], "to_space": [], "chinese": [], "pre_whitespace": [], "pre_punctuation": []}
    changed = {"strip_accents": [], "lowercase": []}
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        cleaned = clean.normalize_str(ch)
        if cleaned == "":
            sets["removed"].append(c)
        elif cleaned == " " and ch != " ":
            sets["to_space"].append(c)
        if chinese.normalize_str(ch) != ch:
            sets["chinese"].append(c)
        pieces = len(pre.pre_tokenize_str("a" + ch + "a"))
        if pieces == 2:
            sets["pre_whitespace"].append(c)
        elif pieces == 3:
            sets["pre_punctuation"].append(c)
        for name, normalizer in (("strip_accents", strip), ("lowercase", lower)):
            out = normalizer.normalize_str(ch)
            if out != ch:
                changed[name].append([c] + [ord(x) for x in out])

    def ranges(values):
        out = []
        for v in values:
            if out and out[-1][1] == v - 1:
                out[-1][1] = v
            else:
                out.append([v, v])
        return out

    result = {name: ranges(values) for name, values in sets.items()}
    result.update(changed)
    return result


def main():
    path = os.path.join(ASSETS, "tokenizer.json")
    tok = Tokenizer.from_file(path)
    defaults = Tokenizer.from_file(path)  # keeps the file's truncation (128) and padding (fixed 128)
    tok.no_truncation()
    tok.no_padding()
    rng = random.Random(20240607)

    texts = FIXED + random_texts(rng, 420)
    single = []
    for text in texts:
        e = tok.encode(text)
        single.append({"text": text, **encoding_dict(e), "decoded": tok.decode(e.ids)})

    # Pairs: lengths chosen so that every branch of longest_first runs (one side fits, both cut,
    # equal lengths, odd limits, no room for text at all). A max_length below the special tokens'
    # count is left out: tokenizers' unsigned subtraction wraps and truncates nothing, graft refuses.
    pair_texts = [(FIXED[i], FIXED[-1 - i]) for i in range(0, 60, 3)] + [
        (rng.choice(texts), rng.choice(texts)) for _ in range(40)]
    pair_texts += [("", "hello world"), ("hello world", ""), ("a b c d e", "f g h i j"), ("a b c d e f", "g h i")]
    pairs = []
    for i, (a, b) in enumerate(pair_texts):
        strategy = ["longest_first", "longest_first", "only_first", "only_second"][i % 4]
        side = "left" if i % 5 == 4 else "right"
        for max_length in (3, 5, 8, 11, 16, 33):
            tok.enable_truncation(max_length, strategy=strategy, direction=side)
            try:
                e = tok.encode(a, b)
            except Exception as error:  # only_first/only_second when the side is too short
                pairs.append({"text": a, "pair": b, "max_length": max_length, "strategy": strategy, "side": side,
                              "error": str(error)})
                continue
            pairs.append({"text": a, "pair": b, "max_length": max_length, "strategy": strategy, "side": side,
                          **encoding_dict(e)})
    tok.no_truncation()

    batches = []
    batch_settings = [
        ({"strategy": "longest"}, None),
        ({"strategy": "longest", "pad_to_multiple_of": 8}, None),
        ({"strategy": "max_length", "max_length": 24}, {"max_length": 24}),
        ({"strategy": "max_length", "max_length": 10, "pad_to_multiple_of": 4}, {"max_length": 10}),
        ({"strategy": "longest", "side": "left"}, {"max_length": 12}),
    ]
    for n, (padding, truncation) in enumerate(batch_settings):
        batch = [rng.choice(texts) for _ in range(5)] + ["", "Short."]
        batch_pairs = [rng.choice(texts) for _ in batch] if n % 2 else None
        kwargs = {"direction": padding.get("side", "right")}
        if padding["strategy"] == "max_length":
            kwargs["length"] = padding["max_length"]
        if "pad_to_multiple_of" in padding:
            kwargs["pad_to_multiple_of"] = padding["pad_to_multiple_of"]
        tok.enable_padding(**kwargs)
        if truncation:
            tok.enable_truncation(truncation["max_length"])
        inputs = list(zip(batch, batch_pairs)) if batch_pairs else batch
        encodings = tok.encode_batch(inputs)
        entry = {"texts": batch, "padding": padding, "truncation": truncation,
                 "ids": [e.ids for e in encodings], "type_ids": [e.type_ids for e in encodings],
                 "mask": [e.attention_mask for e in encodings]}
        if batch_pairs:
            entry["pairs"] = batch_pairs
        batches.append(entry)
        tok.no_padding()
        tok.no_truncation()

    default_texts = ["Hello, world!", "A pair's first half.", "word " * 200, ""]
    golden = {
        "tokenizers_version": tokenizers.__version__,
        "single": single,
        "pairs": pairs,
        "batches": batches,
        "defaults": [{"text": t, **encoding_dict(defaults.encode(t))} for t in default_texts],
        "defaults_pair": {"text": "word " * 100, "pair": "other " * 100,
                          **encoding_dict(defaults.encode("word " * 100, "other " * 100))},
        "code_points": code_point_sweep(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(single)} texts, {len(pairs)} pairs, {len(batches)} batches, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
