#!/usr/bin/python3
"""Goldens for graft::gru / nn::GRU / nn::GRUCell from PyTorch's nn.GRU and nn.GRUCell.

Run with the Debian PyTorch: /usr/bin/python3 tests/golden/make_gru_golden.py
Writes tests/golden/gru/<case>.json. Deterministic: fixed seeds.

Every input value (input, h0, parameters, projections) is an f32 number. torch computes in f64 on
those exact values, and the results are rounded to f32 once when written: the goldens are the true
answer to f32 precision, so graft's f64 run should match them to ~1e-7 relative and its f32 run
carries only its own rounding. Numbers are written with float32's shortest round-trip repr.

loss = sum(output * proj_output) + sum(h_n * proj_h_n); the goldens hold the gradient of that loss
with respect to the input, h0 (when given) and every parameter (PyTorch names, named_parameters order).
Variable lengths go through pack_padded_sequence(enforce_sorted=False) and
pad_packed_sequence(total_length=T), so outputs past a sequence's length are zero.
"""
import json
import os

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gru")
T, N, I, H = 5, 3, 4, 6

# name: (num_layers, bidirectional, batch_first, bias, has_h0, lengths or None)
CASES = {
    "uni_1layer": (1, False, False, True, False, None),
    "uni_2layer_h0": (2, False, False, True, True, None),
    "bi_1layer_batch_first": (1, True, True, True, False, None),
    "bi_2layer_h0_lengths": (2, True, False, True, True, [3, 5, 2]),
    "uni_3layer_lengths_batch_first": (3, False, True, True, False, [5, 1, 4]),
    "bi_3layer_nobias_h0_lengths_short": (3, True, True, False, True, [2, 4, 3]),  # max length < T
}


def f32_values(t):
    """A tensor's values as float32 shortest-repr JSON numbers (raw text, spliced in later)."""
    return [str(np.float32(v)) for v in t.detach().double().flatten().tolist()]


def f32_random(shape, gen, scale=1.0):
    return (torch.randn(shape, generator=gen) * scale).float().double()


class Raw(str):
    """A pre-formatted JSON array: written as it is."""


def entry(t):
    return {"shape": list(t.shape), "data": Raw("[" + ",".join(f32_values(t)) + "]")}


def dump(obj, path):
    """json.dumps with Raw arrays spliced in verbatim (so float32 reprs stay short)."""
    raws = []

    def stash(o):
        if isinstance(o, Raw):
            raws.append(str(o))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(o, dict):
            return {k: stash(v) for k, v in o.items()}
        if isinstance(o, list):
            return [stash(v) for v in o]
        return o

    text = json.dumps(stash(obj), indent=1)
    for k, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{k}@@"', raw)
    with open(path, "w") as f:
        f.write(text + "\n")


def gru_case(name, num_layers, bidirectional, batch_first, bias, has_h0, lengths, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    gru = torch.nn.GRU(I, H, num_layers=num_layers, bias=bias, batch_first=batch_first,
                       bidirectional=bidirectional)
    gru = gru.double()
    with torch.no_grad():  # make every parameter an exact f32 value
        for p in gru.parameters():
            p.copy_(p.float().double())
    D = 2 if bidirectional else 1
    x = f32_random((N, T, I) if batch_first else (T, N, I), gen).requires_grad_()
    h0 = f32_random((num_layers * D, N, H), gen, 0.5).requires_grad_() if has_h0 else None
    if lengths is None:
        out, h_n = gru(x, h0)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out_packed, h_n = gru(packed, h0)
        out, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    proj_out = f32_random(tuple(out.shape), gen)
    proj_h = f32_random(tuple(h_n.shape), gen)
    loss = (out * proj_out).sum() + (h_n * proj_h).sum()
    loss.backward()
    golden = {
        "config": {"input_size": I, "hidden_size": H, "num_layers": num_layers, "bias": bias,
                   "batch_first": batch_first, "bidirectional": bidirectional, "lengths": lengths},
        "input": entry(x),
        "h0": entry(h0) if has_h0 else None,
        "params": [dict(name=n, **entry(p)) for n, p in gru.named_parameters()],
        "proj_output": entry(proj_out),
        "proj_h_n": entry(proj_h),
        "output": entry(out),
        "h_n": entry(h_n),
        "grad_input": entry(x.grad),
        "grad_h0": entry(h0.grad) if has_h0 else None,
        "grad_params": [dict(name=n, **entry(p.grad)) for n, p in gru.named_parameters()],
    }
    dump(golden, os.path.join(OUT, name + ".json"))


def cell_case(name, bias, has_hx, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    cell = torch.nn.GRUCell(I, H, bias=bias).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(p.float().double())
    x = f32_random((N, I), gen).requires_grad_()
    hx = f32_random((N, H), gen, 0.5).requires_grad_() if has_hx else None
    h = cell(x, hx)
    proj = f32_random(tuple(h.shape), gen)
    (h * proj).sum().backward()
    golden = {
        "config": {"input_size": I, "hidden_size": H, "bias": bias},
        "input": entry(x),
        "hx": entry(hx) if has_hx else None,
        "params": [dict(name=n, **entry(p)) for n, p in cell.named_parameters()],
        "proj_output": entry(proj),
        "output": entry(h),
        "grad_input": entry(x.grad),
        "grad_hx": entry(hx.grad) if has_hx else None,
        "grad_params": [dict(name=n, **entry(p.grad)) for n, p in cell.named_parameters()],
    }
    dump(golden, os.path.join(OUT, name + ".json"))


def main():
    os.makedirs(OUT, exist_ok=True)
    for k, (name, case) in enumerate(CASES.items()):
        gru_case(name, *case, seed=100 + k)
    cell_case("cell_hx", True, True, seed=200)
    cell_case("cell_nobias_no_hx", False, False, seed=201)


if __name__ == "__main__":
    main()
