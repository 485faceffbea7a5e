#!/usr/bin/env bash
# The gateway's output policies (issue 19) on Fashion-MNIST: what each one
# catches of PGD, Square and a transfer attack sent through the gateway, what
# it flags of clean inputs, and what it adds to a request's latency.
#
#   bench/policy_eval.sh            # N=200 test images; outputs in $OUT (out/policy-eval)
#
# One gateway serves the same model under five names: no policy, each policy
# alone, and all of them (every action "flag", so the X-Aegis-Flagged header
# names exactly the policies an answer tripped). Adversarial examples are
# crafted outside the gateway (PGD and Square on the served model itself,
# PGD on a separately trained surrogate for the transfer attack, Linf eps
# 0.1) and only those that fool the model are counted; each is then sent
# alone, as an attacker would submit it. Latency: single-image requests over
# loopback, median of 200, per model name.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS="${AEGIS:-$PWD/build/bin/aegis}"
OUT="${OUT:-$PWD/out/policy-eval}"
N="${N:-200}"
export AEGIS_THREADS="${AEGIS_THREADS:-2}"
mkdir -p "$OUT"
[ -f "$OUT/model.pt" ] || "$AEGIS" train --data fashion-mnist --arch cnn --epochs 2 --seed 1 --out "$OUT/model.pt" --quiet
[ -f "$OUT/surrogate.pt" ] || "$AEGIS" train --data fashion-mnist --arch cnn --epochs 2 --seed 2 --out "$OUT/surrogate.pt" --quiet

attack() {  # name, model, attack flags...
  local name="$1" model="$2"; shift 2
  [ -f "$OUT/$name/x_adv.npy" ] || "$AEGIS" attack --model "$model" --data fashion-mnist -n "$N" --eps 0.1 \
    --out "$OUT/$name" --grid 0 --quiet "$@" > /dev/null
}
attack pgd "$OUT/model.pt" -a pgd --steps 20
attack square "$OUT/model.pt" -a square --param queries=1000
attack transfer "$OUT/surrogate.pt" -a pgd --steps 20
# The Mahalanobis detector for the guarded model (threshold for 5% FPR).
[ -f "$OUT/model.pt.detector.json" ] || "$AEGIS" detect-eval --model "$OUT/model.pt" --data fashion-mnist --limit 600 \
  --calibration-samples 300 --detector mahalanobis --attacks fgsm --save "$OUT/model.pt.detector.json" --quiet > /dev/null

cat > "$OUT/serve.toml" <<TOML
[server]
host = "127.0.0.1"
port = 0
keys = "keys.json"
audit_log = "audit.db"
state = "memory"
TOML
policy() {  # name, policy tables
  printf '\n[[models]]\nname = "%s"\npath = "%s"\n[models.monitor]\nenabled = false\n%s\n' "$1" "$OUT/model.pt" "$2" \
    >> "$OUT/serve.toml"
}
conf='[models.policy]
min_confidence = 0.6
confidence_action = "flag"'
vote='[models.policy.vote]
samples = 8
sigma = 0.1
agreement = 0.5
action = "flag"'
inv='[models.policy.invariance]
transforms = ["shift", "brightness"]
action = "flag"'
policy none ""
policy confidence "$conf"
policy vote "[models.policy]
$vote"
policy invariance "[models.policy]
$inv"
policy all "$conf
$vote
$inv"
# The runtime chain an adaptive attacker faces: the detector rejects, every
# policy rejects.
cat >> "$OUT/serve.toml" <<TOML

[[models]]
name = "guarded"
path = "$OUT/model.pt"
detector = "$OUT/model.pt.detector.json"
detection_policy = "reject"
[models.monitor]
enabled = false
[models.policy]
min_confidence = 0.6
confidence_action = "reject"
[models.policy.vote]
samples = 8
sigma = 0.1
agreement = 0.5
action = "reject"
[models.policy.invariance]
transforms = ["shift", "brightness"]
action = "reject"
TOML
rm -f "$OUT/keys.json" "$OUT/audit.db" "$OUT/port"
key=$("$AEGIS" keys create --keys "$OUT/keys.json" --role predict --name policy-eval 2>/dev/null)
"$AEGIS" serve --config "$OUT/serve.toml" --port-file "$OUT/port" --quiet > "$OUT/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -s "$OUT/port" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
[ -s "$OUT/port" ] || { cat "$OUT/serve.log"; exit 1; }

/usr/bin/python3 - "$OUT" "$(cat "$OUT/port")" "$key" "$N" <<'PYEOF' | tee "$OUT/policy-eval.txt"
import gzip, json, sys, time, urllib.request
import numpy as np
out, port, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    clean = (np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n] / 255.0).astype(np.float32)

def ask(model, x):
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                   "data": x.flatten().tolist()}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{model}/infer", body,
                                 {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        r.read()
        return time.perf_counter() - t, r.headers.get("X-Aegis-Flagged") or ""

policies = ["confidence", "vote", "invariance"]
def caught(xs):
    counts = {p: 0 for p in policies + ["any"]}
    for x in xs:
        tripped = ask("all", x)[1]
        for p in policies:
            counts[p] += f"policy-{p}" in tripped
        counts["any"] += bool(tripped)
    return counts

sets = {"clean (false alarms)": clean}
for name in ["pgd", "square", "transfer"]:
    x_adv = np.load(f"{out}/{name}/x_adv.npy").astype(np.float32)
    success = np.load(f"{out}/{name}/success.npy").astype(bool)
    sets[f"{name} (successful: {success.sum()})"] = x_adv[success]
print(f"{'inputs sent through the gateway':34} {'n':>5} " + " ".join(f"{p:>11}" for p in policies + ["any"]))
for name, xs in sets.items():
    c = caught(xs)
    print(f"{name:34} {len(xs):5} " + " ".join(f"{c[p] / max(1, len(xs)):11.3f}" for p in policies + ["any"]))

print("\nlatency, single-image requests over loopback (median of 200 clean images)")
for model in ["none"] + policies + ["all"]:
    ask(model, clean[0])
    times = sorted(ask(model, clean[i % len(clean)])[0] for i in range(200))
    print(f"  {model:12} {1000 * times[100]:7.2f} ms")
PYEOF

# Adaptive black-box attack through the guarded chain (serve/gateway_attack.h):
# the same random search with a fixed step and with a step that shrinks after
# refusals, on the first GN test images.
GN="${GN:-50}"
echo
AEGIS_API_KEY="$key" "$AEGIS" gateway-attack --model "http://127.0.0.1:$(cat "$OUT/port")/v2/models/guarded" \
  --data fashion-mnist --limit "$GN" --eps 0.1 --max-queries "${GQ:-300}" --compare --result "$OUT/gateway-attack.json" \
  --quiet | tee "$OUT/gateway-attack.txt"
kill -TERM "$pid"; wait "$pid" || true; trap - EXIT
