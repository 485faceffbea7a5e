# Integrity: sign the trained model (OpenSSF model-signing v1 bundle), scan it
# for code it would run on load, register it and promote it to production,
# check it out verified, and show a tampered copy being refused. Then encrypt
# it at rest and record the training data in the provenance ledger.
set -euo pipefail
I="$DEMO_OUT/integrity"
rm -rf "$I" && mkdir -p "$I"
cp "$DEMO_OUT/model.pt" "$I/model.pt"

echo "--- keygen + sign (ECDSA P-256, Sigstore bundle with DSSE + in-toto)"
"$AEGIS" keygen --out "$I/signing.pem"
attach=()
[ -f "$DEMO_OUT/train.json" ] && attach=(--attach "training-recipe=$DEMO_OUT/train.json")
"$AEGIS" sign "$I/model.pt" --key "$I/signing.pem" "${attach[@]}"
"$AEGIS" verify "$I/model.pt" --pub "$I/signing.pem.pub" --attestation | cut -c1-160

echo "--- scan (zip + pickle opcodes, nothing loaded)"
"$AEGIS" scan "$I/model.pt"

echo "--- registry: add (signed), promote, checkout verified"
REG="--root $I/registry"
"$AEGIS" registry $REG add fmnist-cnn "$I/model.pt" --reason "demo training run"
"$AEGIS" registry $REG promote fmnist-cnn 1 --reason "passed demo checks"
"$AEGIS" registry $REG checkout fmnist-cnn --out "$I/serve" --pub "$I/signing.pem.pub"
"$AEGIS" registry $REG show fmnist-cnn --stage production | head -6

echo "--- a tampered copy (one byte flipped) is refused"
mkdir -p "$I/tampered"
cp "$I/model.pt" "$I/model.pt.sig" "$I/tampered/"
/usr/bin/python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1; open(p, "wb").write(b)' \
  "$I/tampered/model.pt"
if "$AEGIS" verify "$I/tampered/model.pt" --pub "$I/signing.pem.pub"; then
  echo "UNEXPECTED: tampered model verified"; exit 1
fi
echo "(refused, as it should be)"

echo "--- a pickle that runs os.system on load is flagged"
/usr/bin/python3 - "$I/evil.pkl" <<'PY'
import os, pickle, sys
class Evil:
    def __reduce__(self): return (os.system, ('echo pwned',))
open(sys.argv[1], 'wb').write(pickle.dumps(Evil(), protocol=4))
PY
if "$AEGIS" scan "$I/evil.pkl"; then echo "UNEXPECTED: malicious pickle passed"; exit 1; fi

echo "--- encryption at rest (key in a file, never on the command line)"
"$AEGIS" encrypt "$I/model.pt" --key-file "$I/model.key" --new-key
"$AEGIS" eval --model "$I/model.pt.enc" --key-file "$I/model.key" --data fashion-mnist --split test --limit 500 --quiet | head -3

echo "--- provenance ledger"
"$AEGIS" data register fashion-mnist-train --data fashion-mnist --split train --ledger "$I/provenance.db" \
  --source "Debian dataset-fashion-mnist" --transformation "as packaged"
"$AEGIS" data verify --ledger "$I/provenance.db"
