#!/usr/bin/env bash
# Throughput and latency of `aegis serve` under concurrent load, measured
# with wrk on loopback for a bounded time: 1, 16 and 64 connections (each a
# client sending one 28x28 image per request, keep-alive), with and without
# dynamic batching. Auth, validation, rate limiting (unlimited), output and
# the audit log are on; the query monitor is off here (its cost is in
# serve_bench's GatewayRequest/monitor:1).
#
#   bench/serve_load.sh [MODEL.pt] [SECONDS_PER_RUN]     (default out/demo/model.pt, 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS="${AEGIS:-$PWD/build/bin/aegis}"
secs="${2:-5}"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
model="${1:-out/demo/model.pt}"
if [ ! -f "$model" ]; then
  echo "no $model: training a small stand-in (throughput does not depend on the weights)" >&2
  "$AEGIS" train --data fashion-mnist --limit 512 --epochs 1 --val-fraction 0 --out "$work/model.pt" --quiet >/dev/null
  model="$work/model.pt"
fi
model="$(realpath "$model")"
key=$("$AEGIS" keys create --keys "$work/keys.json" --role predict 2>/dev/null)
/usr/bin/python3 - "$work/body.json" <<'PYEOF'
import json, random, sys
random.seed(0)
json.dump({"inputs": [{"name": "x", "shape": [1, 1, 28, 28], "datatype": "FP32",
           "data": [round(random.random(), 4) for _ in range(784)]}]}, open(sys.argv[1], "w"))
PYEOF
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$work/body.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA

echo "| batching | connections | requests/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
for batching in false true; do
  cat > "$work/serve.toml" <<TOML
[server]
port = 0
keys = "keys.json"
audit_log = "audit-$batching.db"
threads = 72
[[models]]
name = "m"
path = "$model"
max_batch = 64
[models.batching]
enabled = $batching
max_batch = 64
max_delay_ms = 2
[models.monitor]
enabled = false
TOML
  rm -f "$work/port"
  "$AEGIS" serve --config "$work/serve.toml" --port-file "$work/port" --quiet >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do [ -s "$work/port" ] && break; sleep 0.1; done
  url="http://127.0.0.1:$(cat "$work/port")/v2/models/m/infer"
  wrk -t 1 -c 1 -d 1s -s "$work/post.lua" "$url" >/dev/null  # warm-up
  for c in 1 16 64; do
    t=$(( c < 2 ? 1 : 2 ))
    out=$(wrk -t "$t" -c "$c" -d "${secs}s" --timeout 10s --latency -s "$work/post.lua" "$url")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
    echo "| $batching | $c | $rps | $p50 | $p99 |${non2xx:+ non-2xx: $non2xx}"
  done
  kill -TERM "$pid"; wait "$pid" || true; pid=""
done
