#!/usr/bin/python3
"""Writes the safetensors goldens that tests/nn/safetensors_test.cpp reads, using the Hugging Face
`safetensors` library itself, so graft is checked against the real format and not against itself.

    /usr/bin/python3 tests/golden/make_safetensors_golden.py            # rewrite tests/golden/safetensors/
    /usr/bin/python3 tests/golden/make_safetensors_golden.py --check F  # read a graft-written copy of
                                                                        # mixed.safetensors with the library

Needs Debian's python3-torch (for bf16) and `python3 -m pip install --user --break-system-packages
safetensors` (made with safetensors 0.8.0, torch 1.13). Each <name>.safetensors comes with
<name>.json: {tensor: {"dtype", "shape", "values" (row-major; "nan"/"inf"/"-inf" as strings)}} and
"__metadata__".

Checked once by hand (safetensors 0.8.0): graft's serialize_safetensors of mixed.safetensors'
tensors is byte-identical to this library's file (the C++ test asserts that), and `--check` on a
file written by graft's save_safetensors passes.
"""
import json
import math
import struct
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

OUT = Path(__file__).resolve().parent / "safetensors"
DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.int32: "I32", torch.int64: "I64", torch.bool: "BOOL"}


def mixed():
    return {
        "linear.weight": torch.tensor([[0.5, -1.25, 3.0], [1e-3, 2.5e4, -7.0]], dtype=torch.float32),
        "half": torch.tensor([1.0, -2.5, 0.099975586, 65504.0], dtype=torch.float16),
        "brain": torch.tensor([1.0, -3.140625, 1e30], dtype=torch.bfloat16),
        "double": torch.tensor([math.pi, -1e-300], dtype=torch.float64),
        "index": torch.tensor([[0, -1], [2**40, 7]], dtype=torch.int64),
        "int": torch.tensor([-5, 0, 2**31 - 1], dtype=torch.int32),
        "mask": torch.tensor([True, False, False, True, True]),
        "scalar": torch.tensor(42.5, dtype=torch.float32),  # 0-d
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        # a view that is not contiguous, saved as the contiguous copy
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t().contiguous(),
    }, {"format": "pt"}


def special():
    inf, nan = float("inf"), float("nan")
    values = [0.0, -0.0, inf, -inf, nan, 1.0, -65504.0, 6.0e-8, 1.0e-5]  # 6e-8: f16 subnormal
    return {
        "f16": torch.tensor(values, dtype=torch.float16),
        "bf16": torch.tensor(values + [3.0e38, 1.0e-40], dtype=torch.bfloat16),
        "f32": torch.tensor(values + [1.0e-45], dtype=torch.float32),
        "grid": torch.arange(24, dtype=torch.bfloat16).reshape(2, 3, 4) / 8,
    }, {"source": "graft golden", "note": "unicode \u2713 \u00e9"}


def encode(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def expected(tensors, metadata):
    out = {}
    for name, t in tensors.items():
        flat = t.reshape(-1)
        if t.dtype in (torch.float16, torch.bfloat16, torch.float32):
            values = [encode(v) for v in flat.float().tolist()]  # exact: halves and f32 fit in a double
        else:
            values = [encode(v) for v in flat.tolist()]
        out[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": values}
    out["__metadata__"] = metadata
    return out


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def check(path):
    """Reads a graft-written copy of mixed.safetensors with the library and compares every value."""
    tensors, metadata = mixed()
    got = load_file(path)
    raw = Path(path).read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert header.get("__metadata__") == metadata, header.get("__metadata__")
    assert sorted(got) == sorted(tensors), (sorted(got), sorted(tensors))
    for name, want in tensors.items():
        t = got[name]
        assert t.dtype == want.dtype and t.shape == want.shape, (name, t.dtype, t.shape)
        assert all(same(x, y) for x, y in zip(t.reshape(-1).tolist(), want.reshape(-1).tolist())), name
    print(f"ok: the safetensors library reads {path} ({len(got)} tensors) and every value matches")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in (("mixed", mixed), ("special", special)):
        tensors, metadata = make()
        save_file(tensors, str(OUT / f"{name}.safetensors"), metadata=metadata)
        text = json.dumps(expected(tensors, metadata), indent=1, ensure_ascii=False)
        (OUT / f"{name}.json").write_text(text + "\n", encoding="utf-8")
        print(f"wrote {OUT / name}.safetensors and .json")


if __name__ == "__main__":
    main()
