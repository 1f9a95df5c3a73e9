#!/usr/bin/env python3
"""Golden sentence embeddings of all-MiniLM-L6-v2 from Hugging Face transformers, for
tests/nn/bert_test.cpp. Writes tests/golden/minilm/golden.json.

Needs transformers on top of Debian's torch 1.13; the golden was made with transformers 4.38.2 and
tokenizers 0.15.2 (both run on torch 1.13 and Python 3.11), in a venv that sees Debian's torch:
    /usr/bin/python3 -m venv --system-site-packages /tmp/hf-bert-venv
    /tmp/hf-bert-venv/bin/pip install 'transformers==4.38.2' 'tokenizers<0.16'
    scripts/fetch-assets.sh                      # assets/all-MiniLM-L6-v2
    /tmp/hf-bert-venv/bin/python tests/golden/make_minilm_golden.py [assets dir]

What it holds, for the SENTENCES below tokenised as one right-padded batch (the model's own
tokenizer.json, truncation at 128): input_ids and attention_mask [N, S]; the sentence embeddings
[N, 384] as all-MiniLM-L6-v2 defines them (1_Pooling/config.json: mean of last_hidden_state over
the real tokens, then L2 normalisation, as sentence-transformers' Pooling + Normalize); and
last_hidden_state over the real tokens of a few sentences. The model runs in float64 on the
checkpoint's float32 weights, so the goldens are the exact answer to float32 precision and a graft
f32 run carries only its own rounding. Floats are written as %.8g.
"""
import json
import os
import sys

import torch
from transformers import AutoTokenizer, BertModel

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "minilm", "golden.json")
HIDDEN_STATE_ROWS = [0, 7, 23]  # sentences whose last_hidden_state is stored too

SENTENCES = [
    "This is an example sentence.",
    "Each sentence is converted to a vector.",
    "The cat sits outside.",
    "A man is playing guitar.",
    "The new movie is awesome!",
    "The quick brown fox jumps over the lazy dog.",
    "I love pizza.",
    "Hi",
    "?",
    "OK.",
    "Transformers compute attention over every pair of tokens in a sequence.",
    "GRUs carry a hidden state from one time step to the next.",
    "The stock market fell by 3.5% on Tuesday, its worst day since March 2020.",
    "Call me at 555-0123 before 9:30 a.m., please.",
    "She said: \"Don't forget the keys!\" and left.",
    "Café, naïve, résumé and façade all carry accents.",
    "Straße und Übermut sind deutsche Wörter.",
    "東京は日本の首都です。",
    "Emoji are tokens too: 🙂🚀",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy.",
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "What is the capital of Italy?",
    "How do I reset my password?",
    "I forgot my password and cannot log in.",
    "The weather is lovely today; let's go for a walk in the park.",
    "It is raining cats and dogs.",
    "Rotten tomatoes: a dull, lifeless film that overstays its welcome.",
    "Fresh: a sparkling comedy with a big heart and sharp writing.",
    "The referee blew the whistle and the match was over.",
    "Quantum computers use qubits instead of bits.",
    "He plays the violin beautifully.",
    "Nobody expected the Spanish Inquisition.",
    "To be, or not to be, that is the question.",
    "All that glitters is not gold.",
    "UNITED NATIONS GENERAL ASSEMBLY",
    "lowercase words without any punctuation at all",
    "C++20 introduced concepts, ranges and coroutines.",
    "x = 3 * (y + 2) / 7",
    "https://example.com/path?query=1",
    "user@example.org wrote to support@example.com",
    "The the the the the the the the.",
    "Antidisestablishmentarianism is a long word.",
    "supercalifragilisticexpialidocious",
    "The central bank raised interest rates by a quarter of a percentage point to fight inflation.",
    "A dog runs across the beach chasing a red frisbee while children build sandcastles nearby.",
    "Machine learning models can overfit when the training data is small and noisy.",
    "Fine-tuning a pretrained encoder usually beats training from scratch on small datasets.",
    "The recipe calls for two cups of flour, one egg, a pinch of salt and half a cup of milk.",
    "In 1969, Apollo 11 landed on the Moon and Neil Armstrong took the first steps on its surface.",
    "Please turn off the lights when you leave the room.",
    "The train to Boston departs from platform 4 at 6:15 pm.",
    "   leading and trailing spaces   ",
    "Tabs\tand\nnewlines\tare whitespace.",
    " ".join(["This long sentence repeats a clause to reach a length of well over one hundred word pieces,"] * 7),
]


def fmt(values):
    return "[" + ",".join("%.8g" % v for v in values) + "]"


class Raw(str):
    """A pre-formatted JSON array, spliced in verbatim."""


def dump(obj):
    raws = []

    def stash(o):
        if isinstance(o, Raw):
            raws.append(o)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(o, dict):
            return {k: stash(v) for k, v in o.items()}
        if isinstance(o, list):
            return [stash(v) for v in o]
        return o

    text = json.dumps(stash(obj), separators=(",", ":"), ensure_ascii=False)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw)
    return text


def main():
    assets = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "assets", "all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(assets)
    model = BertModel.from_pretrained(assets, add_pooling_layer=False).double().eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).double()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    embeddings = torch.nn.functional.normalize(pooled, p=2, dim=1)

    lengths = batch["attention_mask"].sum(1).tolist()
    golden = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "sentences": SENTENCES,
        "input_ids": batch["input_ids"].tolist(),
        "attention_mask": batch["attention_mask"].tolist(),
        "embeddings": {"shape": list(embeddings.shape), "data": Raw(fmt(embeddings.flatten().tolist()))},
        "last_hidden_state": [
            {"index": i, "shape": [lengths[i], hidden.shape[2]],
             "data": Raw(fmt(hidden[i, : lengths[i]].flatten().tolist()))}
            for i in HIDDEN_STATE_ROWS
        ],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(dump(golden) + "\n")
    print(f"wrote {OUT}: {len(SENTENCES)} sentences, padded length {batch['input_ids'].shape[1]}, "
          f"lengths {min(lengths)}..{max(lengths)}")


if __name__ == "__main__":
    main()
