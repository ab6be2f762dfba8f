#!/usr/bin/env bash
# bpf/lang/fuzz/run.sh — fuzz every target of the bpftrace front end for a
# fixed time; exit non-zero if any input crashes, hangs or overflows.
#
#   bpf/lang/fuzz/run.sh            # 30 s per target
#   SECONDS_PER_TARGET=300 bpf/lang/fuzz/run.sh parse
#
# Installs cargo-fuzz (from crates.io) when it is missing; needs the
# nightly toolchain. Each target starts from the test corpora (valid and
# invalid programs) plus what earlier runs kept in fuzz/corpus/TARGET.
# A crashing input is left in fuzz/artifacts/TARGET/: add it to
# tests/corpus/invalid (or tests/sema/invalid) with its expected
# diagnostics once it is fixed.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-30}
TARGETS=("$@")
if [[ ${#TARGETS[@]} == 0 ]]; then
    TARGETS=(parse check)
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz/run.sh: needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
for dir in corpus/valid corpus/invalid sema/valid sema/invalid codegen compat; do
    for file in ../tests/$dir/*.bt; do
        cp "$file" "$seeds/${dir//\//_}_$(basename "$file")"
    done
done

status=0
for target in "${TARGETS[@]}"; do
    mkdir -p "corpus/$target"
    echo "fuzz/run.sh: $target for ${SECONDS_PER_TARGET}s" >&2
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "$seeds" -- \
        -dict=bpftrace.dict -max_total_time="$SECONDS_PER_TARGET" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "fuzz/run.sh: $target found a failing input; see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit $status
