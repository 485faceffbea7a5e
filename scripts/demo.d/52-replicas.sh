# Two gateway replicas behind one "load balancer" (the client alternates):
# first with each replica's own state, then with the state in one Redis
# (`state = "redis://..."`). The rate limit is 10 requests in a burst per
# key: separate replicas let twice that through, shared ones hold the line.
set -euo pipefail
source "$(dirname "$0")/lib/gateway.sh"
dir="$DEMO_OUT/replicas"
rm -rf "$dir" && mkdir -p "$dir"
command -v redis-server > /dev/null || { echo "redis-server is not installed: run scripts/setup" >&2; exit 1; }
PY=/usr/bin/python3
rport=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --logfile "$dir/redis.log" &
rpid=$!
pids=()
cleanup() { kill "${pids[@]}" "$rpid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 50); do redis-cli -p "$rport" ping > /dev/null 2>&1 && break; sleep 0.1; done
key=$("$AEGIS" keys create --keys "$dir/keys.json" --role predict --models fmnist --name demo-client 2>/dev/null)
"$PY" - "$dir/one.json" <<'PYEOF'
import gzip, json, sys
import numpy as np
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[0] / 255.0
json.dump({"inputs": [{"name": "x", "shape": [1, 1, 28, 28], "datatype": "FP32",
           "data": x.round(4).flatten().tolist()}]}, open(sys.argv[1], "w"))
PYEOF

# replica DIR STATE: a gateway whose state is STATE ("memory" or a Redis URL).
replica() {
  mkdir -p "$1"
  cat > "$1/serve.toml" <<TOML
[server]
host = "127.0.0.1"
port = 0
keys = "$dir/keys.json"
audit_log = "audit.db"
state = "$2"

[[models]]
name = "fmnist"
path = "$DEMO_OUT/model.pt"

[models.monitor]
enabled = false

[models.rate]
requests_per_s = 0.2
request_burst = 10
TOML
  "$AEGIS" serve --config "$1/serve.toml" --port-file "$1/port" --quiet > "$1/serve.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [ -s "$1/port" ] && break; sleep 0.1; done
  [ -s "$1/port" ] || { cat "$1/serve.log"; exit 1; }
}

# 20 requests, alternating between the two replicas: HTTP status per request.
alternate() {
  local a b out=""
  a="http://127.0.0.1:$(cat "$1/port")"
  b="http://127.0.0.1:$(cat "$2/port")"
  for i in $(seq 1 20); do
    u=$a; [ $((i % 2)) = 0 ] && u=$b
    out+="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" -d @"$dir/one.json" \
      "$u/v2/models/fmnist/infer") "
  done
  echo "$out"
}
summary() { echo "$1" | tr ' ' '\n' | grep -c '^200$' || true; }

replica "$dir/local-a" memory
replica "$dir/local-b" memory
s1=$(alternate "$dir/local-a" "$dir/local-b")
replica "$dir/shared-a" "redis://127.0.0.1:$rport"
replica "$dir/shared-b" "redis://127.0.0.1:$rport"
s2=$(alternate "$dir/shared-a" "$dir/shared-b")
echo "one key, limit: a burst of 10 requests (then 1 per 5 s); 20 requests alternating between two replicas"
printf '%-26s %-9s %s\n' "state" "answered" "HTTP status of each request"
printf '%-26s %-9s %s\n' "each replica its own" "$(summary "$s1")" "$s1"
printf '%-26s %-9s %s\n' "shared in Redis" "$(summary "$s2")" "$s2"
echo "each replica keeps its own audit log:"
for r in shared-a shared-b; do
  printf '  %-9s %s\n' "$r" "$("$AEGIS" log verify "$dir/$r/audit.db" 2>&1 | head -1)"
done
