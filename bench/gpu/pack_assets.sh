#!/usr/bin/env bash
# Packs what the GPU machine needs for the MiniLM fine-tune into .gpu-assets/ (git-ignored), small
# enough to carry there (that machine has no package registry, and a carried working tree is
# limited to 64 MiB): all-MiniLM-L6-v2 with its weights stored as f16 (45 MB instead of 90 MB; graft
# loads them into its f32 parameters) and Rotten Tomatoes. Run it here after scripts/fetch-assets.sh;
# bench/gpu/run_all.sh then finds .gpu-assets/ and runs the fine-tune on the GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=assets/all-MiniLM-L6-v2
[ -f "$src/model.safetensors" ] && [ -f assets/rotten_tomatoes.csv ] || { echo "pack_assets: run scripts/fetch-assets.sh first"; exit 2; }
out=.gpu-assets/all-MiniLM-L6-v2-f16
mkdir -p "$out"
for f in config.json vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
  [ -f "$src/$f" ] && cp "$src/$f" "$out/"
done
cp assets/rotten_tomatoes.csv .gpu-assets/
python3 - "$src/model.safetensors" "$out/model.safetensors" <<'PY'
# safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
# then the raw little-endian data. F32 tensors are rewritten as F16; the rest are copied.
import array, json, struct, sys

src, dst = sys.argv[1:]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
meta = header.pop("__metadata__", None)
out_header, chunks, offset = {}, [], 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    begin, end = info["data_offsets"]
    raw = data[begin:end]
    dtype = info["dtype"]
    if dtype == "F32":
        values = array.array("f", raw)  # little-endian machines only, as safetensors itself
        if values and max(abs(min(values)), abs(max(values))) > 65504:
            sys.exit(f"pack_assets: {name} exceeds the f16 range")
        raw, dtype = struct.pack(f"<{len(values)}e", *values), "F16"
    out_header[name] = {"dtype": dtype, "shape": info["shape"], "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
if meta is not None:
    out_header["__metadata__"] = meta
blob = json.dumps(out_header, separators=(",", ":")).encode()
blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(blob)))
    f.write(blob)
    for chunk in chunks:
        f.write(chunk)
PY
du -sh .gpu-assets
echo "carry .gtest .deps .gpu-assets to the GPU machine; bench/gpu/run_all.sh runs the fine-tune from there"
