# Detectors measured the way an attacker who knows them would beat them: the
# demo model with a Mahalanobis detector (threshold for 5% false positives),
# against PGD that ignores it and an adaptive attack that optimises against
# it; the last line is the figure to trust. Then the detector guards the
# model behind the gateway in reject mode, and a black-box search through the
# API, once with a fixed step and once adapting to refusals, shows what an
# outsider gets past it.
set -euo pipefail
source "$(dirname "$0")/lib/gateway.sh"
dir="$DEMO_OUT/detect"
rm -rf "$dir" && mkdir -p "$dir"
"$AEGIS" detect-eval --model "$DEMO_OUT/model.pt" --data fashion-mnist --limit 400 --calibration-samples 150 \
  --detector mahalanobis --fit-samples 2000 --tune-samples 500 --eps 0.1 --attacks pgd --adaptive \
  --adaptive-steps 50 --save "$dir/model.pt.detector.json" 2>&1 | grep -v "%"

{ server_toml; cat <<TOML

[[models]]
name = "fmnist"
path = "$DEMO_OUT/model.pt"
detector = "$dir/model.pt.detector.json"
detection_policy = "reject"

[models.monitor]
enabled = false
TOML
} > "$dir/serve.toml"
key=$("$AEGIS" keys create --keys "$dir/keys.json" --role predict --name demo-attacker 2>/dev/null)
start_gateway "$dir"
echo
AEGIS_API_KEY="$key" "$AEGIS" gateway-attack --model "$url/v2/models/fmnist" --data fashion-mnist --limit 10 --eps 0.1 \
  --max-queries 100 --compare 2>&1 | grep -v "%"
stop_gateway
