#!/bin/sh
# First render of the flame-graph page against the real server, in release:
# `scorch serve` over a store holding the page tests' dataset, whose "big"
# range has 118k distinct functions and a 3001-frame stack; headless
# Chromium loads the page RUNS times (web/e2e/bench.mjs) and prints
# min/median/max of each phase against the 500 ms target. Before that, curl
# times the server's answers alone: cold (tree built) and warm (cached).
#
# MODE warm (the default) warms the server's answer first, so the numbers
# are the page's cost plus the transfer; MODE cold restarts the server
# before every page load, so each load also waits for the server to build
# the answer from the store with every cache empty (a first visit).
#
#   bench/page-render.sh [RUNS] [warm|cold]   (default 9 warm; needs node, npm ci in web/e2e, /usr/bin/chromium)
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-9}
MODE=${2:-warm}
case "$MODE" in
    warm | cold) ;;
    *) echo "usage: bench/page-render.sh [RUNS] [warm|cold]" >&2; exit 2 ;;
esac
TARGET=$(realpath "${CARGO_TARGET_DIR:-target}")

cargo build --release -q -p scorch
cargo build --release -q -p scorch-web --example fixture-store

WORK=$(mktemp -d)
cleanup() {
    [ -f "$WORK/server.pid" ] && kill "$(cat "$WORK/server.pid")" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

node web/e2e/fixtures.mjs --out "$WORK" >/dev/null
"$TARGET/release/examples/fixture-store" "$WORK/dataset.json" "$WORK/store"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# (Re)starts the server with empty caches; bench.mjs runs it before each
# page load in cold mode.
cat >"$WORK/restart.sh" <<EOF
#!/bin/sh
if [ -f "$WORK/server.pid" ]; then
    kill "\$(cat "$WORK/server.pid")" 2>/dev/null
    while kill -0 "\$(cat "$WORK/server.pid")" 2>/dev/null; do sleep 0.05; done
fi
"$TARGET/release/scorch" serve --no-ingest --data-dir "$WORK/store" --listen "127.0.0.1:$PORT" 2>>"$WORK/serve.log" &
echo \$! >"$WORK/server.pid"
i=0
until curl -sf "http://127.0.0.1:$PORT/api/labels" >/dev/null; do
    i=\$((i + 1))
    if [ "\$i" -gt 200 ]; then
        echo "scorch serve did not start:" >&2
        cat "$WORK/serve.log" >&2
        exit 1
    fi
    sleep 0.05
done
EOF
chmod +x "$WORK/restart.sh"
"$WORK/restart.sh"

echo "server: scorch serve (release) at 127.0.0.1:$PORT over the fixture store"
# The server's answers on their own: the first request builds the tree
# (cold), the next ones come from the answer cache.
RANGE=$(node -e 'import("./web/e2e/fixtures.mjs").then((m) => console.log(`from=${m.RANGES.big.from}&until=${m.RANGES.big.until}`))')
URL="http://127.0.0.1:$PORT/api/profile?$RANGE&format=json"
answer() { curl -sf -o /dev/null -w "%{time_total} s, %{size_download} B, cache %header{x-scorch-cache}" "$1"; }
echo "first-paint answer (min_share=0.0001), cold: $(answer "$URL&min_share=0.0001")"
for i in 1 2 3; do
    echo "  warm: first paint $(answer "$URL&min_share=0.0001"); whole tree $(answer "$URL")"
done
if [ "$MODE" = cold ]; then
    echo "cold: the server restarts (empty caches) before each page load"
    SCORCH_URL="http://127.0.0.1:$PORT/" SCORCH_RESTART="$WORK/restart.sh" node web/e2e/bench.mjs "$RUNS" --cold
else
    SCORCH_URL="http://127.0.0.1:$PORT/" node web/e2e/bench.mjs "$RUNS"
fi
