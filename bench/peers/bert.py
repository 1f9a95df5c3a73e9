#!/usr/bin/python3
"""PyTorch's CPU BERT on the cases of bench/bert_bench.cpp, one JSON line per case on stdout:
    {"case": ..., "ms": <median>, "gflops": <at the median>}
Which torch ran, which BERT, and its threads, go to stderr.

The model: all-MiniLM-L6-v2's shape (E 384, 12 heads, F 1536, 6 layers, vocab 30522), random
weights. transformers' BertModel / BertForSequenceClassification (eager attention) when this
interpreter has transformers, else PlainBert below: the same math in plain torch, op for op as
transformers' eager BERT (additive mask, softmax, dropout on the probabilities, post-LN).
Shape letters: B batch, S sequence length, E hidden, F intermediate, L layers, C labels.

bert_train/*: one fine-tuning step (forward in train mode with dropout, cross-entropy on a C = 2
pooler head, backward, torch.optim.AdamW step); bert_infer/*: BertModel forward in eval mode
under torch.no_grad(). Every token is real. FLOPs as graft counts them (bench/bert_bench.cpp):
forward L*(2*B*S*(4E^2 + 2EF) + 4*B*S^2*E) + 2*B*E^2 (+ 2*B*E*C training), training 3x forward.
Times are the median of repeated runs after a warm-up, on random data made outside the timed
region. Threads: GRAFT_BENCH_THREADS, else the CPUs this process may run on (as matmul.py).
"""
import json
import math
import os
import sys

THREADS = int(os.environ.get("GRAFT_BENCH_THREADS", len(os.sched_getaffinity(0))))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))  # before torch loads OpenBLAS (see matmul.py)

import torch  # noqa: E402

from timing import timed  # noqa: E402
from torch import nn  # noqa: E402

VOCAB, E, HEADS, F, L, MAX_POS, TYPES, LABELS = 30522, 384, 12, 1536, 6, 512, 2, 2


def flops(B, S, training):
    f = L * (2.0 * B * S * (4 * E * E + 2 * E * F) + 4.0 * B * S * S * E) + 2.0 * B * E * E
    return 3 * (f + 2.0 * B * E * LABELS) if training else f


class PlainLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(E, E), nn.Linear(E, E), nn.Linear(E, E)
        self.attention_dense, self.attention_norm = nn.Linear(E, E), nn.LayerNorm(E, eps=1e-12)
        self.intermediate, self.output = nn.Linear(E, F), nn.Linear(F, E)
        self.output_norm = nn.LayerNorm(E, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, additive_mask):
        B, S, _ = x.shape
        d = E // HEADS

        def heads(t):
            return t.view(B, S, HEADS, d).permute(0, 2, 1, 3)

        scores = torch.matmul(heads(self.query(x)), heads(self.key(x)).transpose(-1, -2)) / math.sqrt(d)
        probs = self.dropout(torch.softmax(scores + additive_mask, dim=-1))
        context = torch.matmul(probs, heads(self.value(x))).permute(0, 2, 1, 3).reshape(B, S, E)
        h = self.attention_norm(self.dropout(self.attention_dense(context)) + x)
        f = self.output(nn.functional.gelu(self.intermediate(h)))
        return self.output_norm(self.dropout(f) + h)


class PlainBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.word, self.position, self.token_type = nn.Embedding(VOCAB, E, padding_idx=0), nn.Embedding(MAX_POS, E), \
            nn.Embedding(TYPES, E)
        self.norm, self.dropout = nn.LayerNorm(E, eps=1e-12), nn.Dropout(0.1)
        self.layers = nn.ModuleList(PlainLayer() for _ in range(L))
        self.pooler = nn.Linear(E, E)

    def forward(self, input_ids, attention_mask):
        S = input_ids.shape[1]
        token_types = torch.zeros_like(input_ids)
        x = self.word(input_ids) + self.token_type(token_types) + self.position(torch.arange(S, device=input_ids.device))
        x = self.dropout(self.norm(x))
        additive = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, additive)
        return x, torch.tanh(self.pooler(x[:, 0]))


class PlainClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.bert, self.dropout, self.classifier = PlainBert(), nn.Dropout(0.1), nn.Linear(E, LABELS)

    def forward(self, input_ids, attention_mask):
        return self.classifier(self.dropout(self.bert(input_ids, attention_mask)[1]))


def make_models():
    """(name, backbone factory, classifier factory); each forward returns what the graft side keeps."""
    try:
        import transformers
    except ImportError:
        return "plain torch (transformers not installed)", PlainBert, PlainClassifier
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=E, num_hidden_layers=L, num_attention_heads=HEADS,
                                     intermediate_size=F, max_position_embeddings=MAX_POS, layer_norm_eps=1e-12)
    if hasattr(config, "_attn_implementation"):
        config._attn_implementation = "eager"  # the math graft does; 2.x SDPA would be another peer

    class HfBackbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = transformers.BertModel(config)

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    class HfClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            config.num_labels = LABELS
            self.model = transformers.BertForSequenceClassification(config)

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return f"transformers {transformers.__version__}", HfBackbone, HfClassifier


def bench_train(make_classifier, B, S):
    torch.manual_seed(1)
    model = make_classifier().train()
    optimizer = torch.optim.AdamW(model.parameters())
    ids, mask = torch.randint(0, VOCAB, (B, S)), torch.ones(B, S, dtype=torch.long)
    labels = torch.randint(0, LABELS, (B,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(ids, mask), labels)
        loss.backward()
        optimizer.step()

    timed(f"bert_train/B{B}_S{S}", step, flops(B, S, True), min_time=2.0)


def bench_infer(make_backbone, B, S):
    torch.manual_seed(1)
    model = make_backbone().eval()
    ids, mask = torch.randint(0, VOCAB, (B, S)), torch.ones(B, S, dtype=torch.long)

    def step():
        with torch.no_grad():
            model(ids, mask)

    timed(f"bert_infer/B{B}_S{S}", step, flops(B, S, False), min_time=2.0)


def main():
    torch.set_num_threads(THREADS)
    which, make_backbone, make_classifier = make_models()
    print(json.dumps({"torch": torch.__version__, "bert": which, "python": sys.executable,
                      "threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available()}),
          file=sys.stderr)
    bench_train(make_classifier, 16, 128)
    bench_infer(make_backbone, 32, 128)


if __name__ == "__main__":
    main()
