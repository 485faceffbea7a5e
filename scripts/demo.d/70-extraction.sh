# Model theft through the gateway: the demo model is served as in 50-serve
# (top-3 answers, query monitor with PRADA and a calibrated k-NN detector, a
# rule that quarantines a key whose recent requests keep raising alerts), and
# two thieves with their own keys try to copy it with `aegis attack --attack
# extraction -m URL`: KnockoffNets with 1,000 natural images, and Papernot's
# Jacobian augmentation growing 100 seed images to 800 synthetic queries.
# Printed per thief: whether it finished (and the copy's fidelity) or was
# stopped, and the alerts the monitor raised. Whether the monitor catches a
# thief depends on the queries: natural images look like ordinary traffic.
set -euo pipefail
source "$(dirname "$0")/lib/gateway.sh"
dir="$DEMO_OUT/extraction"
rm -rf "$dir" && mkdir -p "$dir"
{ server_toml; cat <<TOML

[[models]]
name = "fmnist"
path = "$DEMO_OUT/model.pt"
max_batch = 64

[models.output]
mode = "topk"
top_k = 3

[models.monitor]
k = 20
history = 1000

[[models.rules]]
source = "monitor"
window = 10
max_alert_rate = 0.3
action = "quarantine"
TOML
} > "$dir/serve.toml"
"$AEGIS" keys create --keys "$dir/keys.json" --role predict --models fmnist --name knockoff-thief > "$dir/knockoff.key" 2>/dev/null
"$AEGIS" keys create --keys "$dir/keys.json" --role predict --models fmnist --name jacobian-thief > "$dir/jacobian.key" 2>/dev/null
admin=$("$AEGIS" keys create --keys "$dir/keys.json" --role admin --name demo-admin 2>/dev/null)
start_gateway "$dir"

alerts() { curl -s -H "Authorization: Bearer $admin" "$url/metrics" |
  awk '/^aegis_alerts_total.*source="monitor-/ {s += $NF} END {print s + 0}'; }
steal() {  # name, extra flags
  local name=$1; shift
  local before; before=$(alerts)
  echo "$name:"
  if AEGIS_API_KEY=$(cat "$dir/$name.key") "$AEGIS" attack --attack extraction -m "$url/v2/models/fmnist" \
      --data fashion-mnist --substitute-epochs 3 --test-limit 500 --transfer-samples 50 --seed 1 --quiet \
      -o "$dir/$name" "$@" > "$dir/$name.log" 2>&1; then
    sed 's/^/  /' "$dir/$name.log" | grep -E 'budget|answers' || true
    echo "  finished: the monitor did not stop it ($(( $(alerts) - before )) monitor alerts during the theft)"
  else
    echo "  stopped: $(grep -m1 'error' "$dir/$name.log")"
    echo "  the monitor caught it: $(( $(alerts) - before )) monitor alerts, then the response rule quarantined the key"
  fi
}
steal knockoff --method knockoff --budget 1000 --query-data train
steal jacobian --method jacobian --budget 800 --seed-size 100 --query-data test
curl -s -H "Authorization: Bearer $admin" "$url/metrics" | grep -E '^aegis_(alerts|response_actions)_total' || true
echo "review queue (admin): $(curl -s -H "Authorization: Bearer $admin" "$url/v1/review" |
  /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))') flagged requests waiting"
stop_gateway
"$AEGIS" log verify "$dir/audit.db"
