# Serve the demo model behind the secure gateway on loopback: authorised and
# unauthorised requests with curl, then a real Square attack run through the
# API (`aegis attack --model URL`, the RemoteClassifier) that the query
# monitor flags and a response rule quarantines; the audit log verifies at
# the end.
set -euo pipefail
source "$(dirname "$0")/lib/gateway.sh"
dir="$DEMO_OUT/serve"
rm -rf "$dir" && mkdir -p "$dir"
{ server_toml; cat <<TOML

[[models]]
name = "fmnist"
path = "$DEMO_OUT/model.pt"
max_batch = 64

[models.rate]
requests_per_s = 50
request_burst = 100

[models.output]
mode = "rounded"
decimals = 3

[models.monitor]
k = 20
history = 500

[[models.rules]]
source = "monitor"
window = 10
max_alert_rate = 0.05
action = "quarantine"
TOML
} > "$dir/serve.toml"
key=$("$AEGIS" keys create --keys "$dir/keys.json" --role predict --models fmnist --name demo-client 2>/dev/null)
admin=$("$AEGIS" keys create --keys "$dir/keys.json" --role admin --name demo-admin 2>/dev/null)
explainer=$("$AEGIS" keys create --keys "$dir/keys.json" --role explain --models fmnist --name demo-analyst 2>/dev/null)
"$AEGIS" keys list --keys "$dir/keys.json"
start_gateway "$dir"
head -3 "$dir/serve.log"

PY=/usr/bin/python3
# One test image as an Open Inference Protocol request body.
"$PY" - "$dir/one.json" <<'PYEOF'
import gzip, json, sys
import numpy as np
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[0] / 255.0
json.dump({"id": "demo-1", "inputs": [{"name": "x", "shape": [1, 1, 28, 28], "datatype": "FP32",
           "data": x.round(4).flatten().tolist()}]}, open(sys.argv[1], "w"))
PYEOF
show() { printf '%-44s -> HTTP %s %s\n' "$1" "$2" "$(head -c 160 "$dir/resp.json")"; }
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' "$url/v2/health/ready"); show "GET /v2/health/ready (no key)" "$code"
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H 'Content-Type: application/json' -d @"$dir/one.json" \
  "$url/v2/models/fmnist/infer"); show "infer without a key" "$code"
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer aegis_000000000000_$(printf '0%.0s' $(seq 64))" \
  -d @"$dir/one.json" "$url/v2/models/fmnist/infer"); show "infer with a made-up key" "$code"
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer $key" -d '{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}' \
  "$url/v2/models/fmnist/infer"); show "infer with a wrong shape" "$code"
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer $key" -d @"$dir/one.json" \
  "$url/v2/models/fmnist/infer"); show "infer with the client's key" "$code"
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer $key" "$url/v1/review"); show "review queue with a predict key" "$code"

# An explanation of the same image: its own role, charged what it costs.
"$PY" - "$dir/one.json" "$dir/explain.json" <<'PYEOF'
import json, sys
body = json.load(open(sys.argv[1]))
body["parameters"] = {"method": "ig", "steps": 32}
json.dump(body, open(sys.argv[2], "w"))
PYEOF
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer $key" -d @"$dir/explain.json" \
  "$url/v2/models/fmnist/explain"); show "explain with the predict key" "$code"
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer $explainer" -d @"$dir/explain.json" \
  "$url/v2/models/fmnist/explain")
"$PY" - "$dir/resp.json" "$code" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
out = {o["name"]: o for o in r["outputs"]}
a = out["attributions"]["data"]
print(f"explain (IG, 32 steps) with the analyst's key -> HTTP {sys.argv[2]}: class {out['target']['data'][0]}, "
      f"attribution sum {sum(a):.3f}, completeness gap {out['completeness_gap']['data'][0]:.1e}, "
      f"charged {r['parameters']['queries']} model evaluations against the key's quota")
PYEOF

echo "Square attack (score-based, Linf 0.1, up to 1000 queries per image) on 4 test images, through the API with the client's key"
set +e
AEGIS_API_KEY="$key" "$AEGIS" attack --model "$url/v2/models/fmnist" --data fashion-mnist -n 4 --batch-size 4 \
  --attack square --eps 0.1 --param queries=1000 --grid 0 --out "$dir/square" --quiet > "$dir/square.txt" 2>&1
status=$?
set -e
if [ "$status" -eq 0 ]; then
  echo "  the attack ran to the end: the monitor did not stop it"; head -3 "$dir/square.txt"
else
  echo "  the attack was stopped by the gateway: $(tail -1 "$dir/square.txt")"
fi
code=$(curl -s -o "$dir/resp.json" -w '%{http_code}' -H "Authorization: Bearer $admin" "$url/v1/review")
echo "review queue (admin): HTTP $code, $("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$dir/resp.json") flagged requests waiting"
"$PY" - "$dir/resp.json" <<'PYEOF'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
if items:
    it, ev = items[0], items[0].get("evidence", {})
    print(f"  first item: #{it['id']} reason {it['reason']}, key {it['key_id']}, "
          f"{len(ev.get('samples', []))} sample(s) with their {ev.get('method', '?')} map for the reviewer")
PYEOF
echo "  (a person reviews them at $url/v1/review in a browser, with the admin key)"
curl -s -H "Authorization: Bearer $admin" "$url/metrics" | grep -E '^aegis_(alerts|rejections|response_actions)_total' || true
stop_gateway
"$AEGIS" log verify "$dir/audit.db"
