#!/usr/bin/env bash
# Measures the "Done when" figures of the privacy and model-theft attacks on
# real Fashion-MNIST (issue #8): membership inference on a deliberately
# overfit model vs the demo's regularised one, extraction with 10,000
# probability queries vs labels only, transfer vs same-norm noise, MI-Face.
# Not part of ctest: it trains three CNNs and takes tens of minutes on 2 cores.
#
#   bench/privacy_figures.sh [out-dir]        (AEGIS=path/to/aegis to override)
# Results: one JSON per run in out-dir (default build/privacy-figures).
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS="${AEGIS:-build/bin/aegis}"
OUT="${1:-build/privacy-figures}"
mkdir -p "$OUT"
run() { echo "+ $*" >&2; "$@"; }

# The demo's recipe (scripts/demo.d/10-train.sh: dropout 0.25, weight decay 5e-4, 10% validation), on
# 20,000 images for 2 epochs to fit 2 shared cores; DEMO_TRAIN_ARGS="--epochs 4" gives the demo's own model.
DEMO_TRAIN_ARGS="${DEMO_TRAIN_ARGS:---limit 20000 --epochs 2}"
# shellcheck disable=SC2086
[ -f "$OUT/demo.pt" ] || run "$AEGIS" train --data fashion-mnist --arch cnn $DEMO_TRAIN_ARGS --out "$OUT/demo.pt" --quiet
# Deliberately overfit: the first 1,000 training images only, no dropout, no weight decay, 30 epochs.
[ -f "$OUT/overfit.pt" ] || run "$AEGIS" train --data fashion-mnist --arch cnn --limit 1000 --val-fraction 0 \
  --dropout 0 --weight-decay 0 --epochs 30 --batch-size 64 --schedule constant --out "$OUT/overfit.pt" --quiet

# A smaller, harder overfit model: 500 images, 40 epochs.
[ -f "$OUT/overfit500.pt" ] || run "$AEGIS" train --data fashion-mnist --arch cnn --limit 500 --val-fraction 0 \
  --dropout 0 --weight-decay 0 --epochs 40 --batch-size 64 --schedule constant --out "$OUT/overfit500.pt" --quiet
run "$AEGIS" attack --attack membership --method threshold --model "$OUT/overfit500.pt" --candidates 500 \
  -o "$OUT/membership-threshold-overfit500" --quiet
# LiRA (offline, 8 CNN shadows each trained like the victim on 500 attacker images; slow on 2 cores).
[ -n "${LIRA:-}" ] && run "$AEGIS" attack --attack membership --method lira --model "$OUT/overfit500.pt" --candidates 500 \
  --attacker-records 4000 -o "$OUT/membership-lira-overfit500" --quiet

# Membership: members = first 1,000 training images (all of the overfit model's training set), non-members = first 1,000 test images.
for model in overfit demo; do
  run "$AEGIS" attack --attack membership --method threshold --model "$OUT/$model.pt" --candidates 1000 \
    -o "$OUT/membership-threshold-$model" --quiet
  run "$AEGIS" attack --attack membership --method label-only --model "$OUT/$model.pt" --candidates 1000 --perturbations 8 \
    -o "$OUT/membership-label-only-$model" --quiet
done

# Extraction: 10,000 queries from the training images (labels unused), CNN substitute, evaluated on 2,000 test images.
for access in full label; do
  run "$AEGIS" attack --attack extraction --model "$OUT/demo.pt" --budget 10000 --access "$access" \
    --substitute-epochs "${SUBSTITUTE_EPOCHS:-5}" --test-limit 2000 --transfer-samples 500 --eps 0.1 \
    -o "$OUT/extraction-$access" --quiet
done

# MI-Face, white-box, against the overfit model; class means from its 1,000 training images.
run "$AEGIS" attack --attack inversion --model "$OUT/overfit.pt" --reference-limit 1000 --steps 300 \
  -o "$OUT/inversion" --quiet

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(n): return json.load(open(os.path.join(out, n.removesuffix(".json"), "result.json")))
for m in ("overfit", "demo"):
    for a in ("threshold", "label-only"):
        r = load(f"membership-{a}-{m}.json")["metrics"]
        print(f"membership {a:10s} {m:8s} AUC {r['auc']:.3f} TPR@0.1%FPR {r['tpr_at_0.1pct_fpr']:.3f} "
              f"TPR@1%FPR {r['tpr_at_1pct_fpr']:.3f} best-bal-acc {r['best_balanced_accuracy']:.3f}")
for a in ("full", "label"):
    e = load(f"extraction-{a}.json")["evaluation"]
    print(f"extraction {a:5s} fidelity {e['fidelity']:.3f} substitute acc {e['substitute_accuracy']:.3f} "
          f"victim acc {e['victim_accuracy']:.3f} transfer {e['transfer']['transfer_rate']:.3f} "
          f"noise {e['transfer']['noise_rate']:.3f}")
i = load("inversion.json")
print(f"inversion closest-to-own {i['closest_to_own_fraction']:.2f} mean MSE {i['mean_mse_to_own_class_mean']:.4f} "
      f"mean SSIM {i['mean_ssim_to_own_class_mean']:.3f} nearest {i['nearest_class_mean']}")
PY
