#!/usr/bin/env bash
# The poisoning "Done when" figures on real Fashion-MNIST with the built-in CNN:
# BadNets (3x3 patch, 5%) -> attack success and clean accuracy vs a clean model;
# spectral signatures / activation clustering precision and recall against the
# poison record; retraining after `aegis data filter`; Neural Cleanse anomaly
# index of the clean and the backdoored model; a second backdoor with a blended
# trigger; STRIP's false acceptance at 1% false rejection on both backdoored
# models. Writes $OUT/summary.json.
#
#   bench/poisoning_eval.sh [OUT_DIR]   (env: EPOCHS=3 THREADS=2 NC_STEPS=300 NC_LIMIT=1000 LIMIT=0 SEED=1)
#
# Takes ~15 minutes on 2 cores (three CNN trainings, two Neural Cleanse scans).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AEGIS=${AEGIS:-$ROOT/build/bin/aegis}
OUT=${1:-$ROOT/build/poisoning-eval}
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-2}
NC_STEPS=${NC_STEPS:-300}
SEED=${SEED:-1}
LIMIT=${LIMIT:-0}        # training samples of Fashion-MNIST to use (0 = all 60000)
NC_LIMIT=${NC_LIMIT:-1000}
PY=/usr/bin/python3
mkdir -p "$OUT"
T="--threads $THREADS --seed $SEED"
TRAIN="--arch cnn --epochs $EPOCHS --val-fraction 0 $T"
say() { echo "[$(date +%H:%M:%S)] $*"; }

say "clean model"
[ -f "$OUT/clean.pt" ] || "$AEGIS" train --data fashion-mnist --limit "$LIMIT" $TRAIN -q -o "$OUT/clean.pt"
say "BadNets: 3x3 checker patch, 5% of the training set -> class 0"
[ -f "$OUT/poisoned/poison.json" ] || "$AEGIS" poison badnets --data fashion-mnist --limit "$LIMIT" --target 0 --rate 0.05 --patch-size 3 $T -q -o "$OUT/poisoned" --json > "$OUT/poison.json"
P="$OUT/poisoned/x.npy --labels $OUT/poisoned/y.npy"
say "backdoored model"
[ -f "$OUT/backdoored.pt" ] || "$AEGIS" train --data $P $TRAIN -q -o "$OUT/backdoored.pt"
say "blended trigger (Chen et al. 2017): a random full-image pattern at alpha 0.1, 5% -> class 5 (Sandal)"
[ -f "$OUT/blended/poison.json" ] || "$AEGIS" poison badnets --data fashion-mnist --limit "$LIMIT" --target 5 --rate 0.05 \
  --trigger blend --pattern random --alpha 0.1 $T -q -o "$OUT/blended" > /dev/null
[ -f "$OUT/blended.pt" ] || "$AEGIS" train --data "$OUT/blended/x.npy" --labels "$OUT/blended/y.npy" $TRAIN -q -o "$OUT/blended.pt"
"$AEGIS" poison evaluate --model "$OUT/blended.pt" --record "$OUT/blended/poison.json" --split test $T --json > "$OUT/eval-blended.json"
# STRIP (Gao et al. 2019) at 1% false rejection: 100 overlays from the first
# 100 clean training images, threshold on the first 2000 clean test images,
# false acceptance of triggered inputs on the other 8000.
for m in backdoored:poisoned blended:blended; do
  say "STRIP: ${m%%:*} model"
  "$AEGIS" detect-eval --model "$OUT/${m%%:*}.pt" --data fashion-mnist --detector strip --strip-overlays 100 \
    --strip-pool 100 --backdoor "$OUT/${m##*:}/poison.json" --attacks none --fpr 0.01 --calibration-samples 2000 \
    $T --json > "$OUT/strip-${m%%:*}.json"
done
for m in clean backdoored; do
  "$AEGIS" poison evaluate --model "$OUT/$m.pt" --record "$OUT/poisoned/poison.json" --split test $T --json > "$OUT/eval-$m.json"
done
say "scan the poisoned set with the backdoored model"
"$AEGIS" data scan $P --model "$OUT/backdoored.pt" --method both --truth "$OUT/poisoned/poison.json" \
  --out "$OUT/scan.json" $T -q > /dev/null
say "filter and retrain"
"$AEGIS" data filter $P --from "$OUT/scan.json" -o "$OUT/filtered" $T -q > /dev/null
"$AEGIS" train --data "$OUT/filtered/x.npy" --labels "$OUT/filtered/y.npy" $TRAIN -q -o "$OUT/retrained.pt"
"$AEGIS" poison evaluate --model "$OUT/retrained.pt" --record "$OUT/poisoned/poison.json" --split test $T --json > "$OUT/eval-retrained.json"
for m in clean backdoored; do
  say "Neural Cleanse: $m model"
  "$AEGIS" scan-backdoor --model "$OUT/$m.pt" --limit "$NC_LIMIT" --steps "$NC_STEPS" $T --json > "$OUT/nc-$m.json"
done

"$PY" - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
r = lambda n: json.load(open(f"{out}/{n}"))
ec, eb, er = r("eval-clean.json"), r("eval-backdoored.json"), r("eval-retrained.json")
def strip(name):
    e = r(f"strip-{name}.json")["evaluation"]
    t = e["attacks"][0]
    return {"false_rejection": e["clean_fpr"], "false_acceptance": t["evaded"] / max(1, t["successful"]),
            "triggered_reaching_target": t["successful"], "auc": t["auc"], "seconds": e["seconds"]}
scan, flt = r("scan.json"), r("filtered/filter.json")
nc, nb = r("nc-clean.json"), r("nc-backdoored.json")
s = {
  "clean_accuracy": {"clean_model": ec["clean_accuracy"], "backdoored": eb["clean_accuracy"], "retrained_after_filter": er["clean_accuracy"]},
  "attack_success_rate": {"clean_model": ec["attack_success_rate"], "backdoored": eb["attack_success_rate"], "retrained_after_filter": er["attack_success_rate"]},
  "blended": r("eval-blended.json"),
  "strip": {"badnets": strip("backdoored"), "blended": strip("blended")},
  "detection": scan["evaluation"],
  "filter": {"removed": flt["removed_samples"], "kept": flt["kept_samples"]},
  "neural_cleanse": {
    "clean": {"max_anomaly_index": max(c["anomaly_index"] for c in nc["classes"]), "flagged": nc["flagged_classes"]},
    "backdoored": {"max_anomaly_index": max(c["anomaly_index"] for c in nb["classes"]), "flagged": nb["flagged_classes"],
                   "target_anomaly_index": nb["classes"][0]["anomaly_index"]},
  },
}
json.dump(s, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(s, indent=2))
PYEOF
