# Runtime verification at the gateway: the demo model served with output
# policies (a confidence floor that abstains, a vote over noisy copies and
# one-pixel-shift / brightness invariance that flag). Eight test images and
# their PGD adversarial versions go through it one by one; the table shows
# what each answer came back as and which policies it tripped.
set -euo pipefail
source "$(dirname "$0")/lib/gateway.sh"
dir="$DEMO_OUT/policy"
rm -rf "$dir" && mkdir -p "$dir"
{ server_toml; cat <<TOML

[[models]]
name = "fmnist"
path = "$DEMO_OUT/model.pt"

[models.monitor]
enabled = false

[models.policy]
min_confidence = 0.6

[models.policy.vote]
samples = 8
sigma = 0.1
action = "flag"

[models.policy.invariance]
transforms = ["shift", "brightness"]
action = "flag"
TOML
} > "$dir/serve.toml"
key=$("$AEGIS" keys create --keys "$dir/keys.json" --role predict --models fmnist --name demo-client 2>/dev/null)
"$AEGIS" attack --model "$DEMO_OUT/model.pt" --data fashion-mnist -n 8 --attack pgd --eps 0.1 --steps 20 --grid 0 \
  --out "$dir/pgd" --quiet > /dev/null
start_gateway "$dir"
/usr/bin/python3 - "$dir" "$url" "$key" <<'PYEOF'
import gzip, json, sys, urllib.error, urllib.request
import numpy as np
d, url, key = sys.argv[1:4]
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    clean = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:8] / 255.0
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)[:8]
adv = np.load(f"{d}/pgd/x_adv.npy")
def ask(x):
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                   "data": np.asarray(x, np.float32).flatten().tolist()}]}).encode()
    req = urllib.request.Request(f"{url}/v2/models/fmnist/infer", body, {"Authorization": f"Bearer {key}",
                                                                              "Content-Type": "application/json"})
    try:
        r = urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}", json.load(e).get("reason", "?")
    with r:
        out = json.load(r)
        label = next(o for o in out["outputs"] if o["name"] == "label")["data"][0]
        return ("uncertain" if label < 0 else str(label)), r.headers.get("X-Aegis-Flagged") or "-"
print(f"{'image':>5} {'true':>4}   {'clean answer':>12} {'flagged by':<34} {'PGD answer':>10} flagged by")
for i in range(8):
    c, cf = ask(clean[i])
    a, af = ask(adv[i])
    print(f"{i:5} {y[i]:4}   {c:>12} {cf:<34} {a:>10} {af}")
PYEOF
stop_gateway
