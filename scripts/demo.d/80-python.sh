# aegis from Python, as a PyTorch user has it: a plain nn.Module defined here,
# attacked with PGD, evaluated by the AutoAttack protocol and hardened inside
# an ordinary PyTorch training loop with aegis.adversarial_batch. Then the
# same network exported without metadata goes through the CLI and is given
# its metadata with `aegis model meta`. About a minute on 2 cores.
set -euo pipefail
BUILD="$(dirname "$AEGIS")/.."
OUT="$DEMO_OUT/python"
mkdir -p "$OUT"
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "skipped: Fashion-MNIST is not installed (scripts/setup installs dataset-fashion-mnist)"
  exit 0
fi
# A file, not stdin: torch.jit.script reads the module's source.
cat >"$OUT/harden.py" <<'PY'
import sys, torch, aegis
out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(2)
aegis.set_progress("quiet")

import gzip, numpy as np
def idx(path):
    b = gzip.open(path).read()
    n = int.from_bytes(b[4:8], "big")
    return np.frombuffer(b, dtype=np.uint8, offset=16 if b[3] == 3 else 8).reshape(n, -1)
root = "/usr/share/datasets/fashion-mnist/"
x = torch.from_numpy(idx(root + "train-images-idx3-ubyte.gz")[:6000].astype(np.float32) / 255).view(-1, 1, 28, 28)
y = torch.from_numpy(idx(root + "train-labels-idx1-ubyte.gz")[:6000, 0].astype(np.int64))
xt = torch.from_numpy(idx(root + "t10k-images-idx3-ubyte.gz")[:300].astype(np.float32) / 255).view(-1, 1, 28, 28)
yt = torch.from_numpy(idx(root + "t10k-labels-idx1-ubyte.gz")[:300, 0].astype(np.int64))

class Net(torch.nn.Module):                     # the user's own model
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * 7 * 7, 10)
    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc(x.flatten(1))

def fit(net, adversarial):
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step in range(0, 6000, 100):
        xb, yb = x[step:step + 100], y[step:step + 100]
        net.train()
        if adversarial:
            xb = aegis.adversarial_batch(net, xb, yb, method="pgd-at", eps=0.1, steps=3, step=step // 100)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    return net.eval()

print(f"{'model':<10} {'clean':>7} {'PGD-20':>7} {'AutoAttack (quick)':>19}")
for name, adversarial in (("standard", False), ("pgd-at", True)):
    net = fit(Net(), adversarial)
    r = aegis.attack("pgd", net, xt, yt, eps=0.1, steps=20)
    ev = aegis.evaluate(net, xt[:200], yt[:200], eps=0.1, budget="quick", sanity=False)
    pgd = float((r.adv_pred == yt).float().mean())
    print(f"{name:<10} {ev.clean_accuracy:>7.3f} {pgd:>7.3f} {ev.robust_accuracy:>19.3f}")
    torch.jit.save(torch.jit.script(net), f"{out}/{name}.pt")   # as users export: no aegis metadata
np.save(f"{out}/x.npy", xt.numpy()); np.save(f"{out}/y.npy", yt.numpy())
PY
PYTHONPATH="$BUILD/python" /usr/bin/python3 "$OUT/harden.py" "$OUT"
echo
echo "the exported pgd-at model (no metadata) through the CLI, shape taken from the data:"
"$AEGIS" eval -m "$OUT/pgd-at.pt" --data "$OUT/x.npy" --labels "$OUT/y.npy" 2>&1 | grep -v "%" | head -2
"$AEGIS" model meta "$OUT/pgd-at.pt" --input-shape 1,28,28 --force \
  --class-names T-shirt,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Boot -o "$OUT/pgd-at-meta.pt"
"$AEGIS" info "$OUT/pgd-at-meta.pt" | sed -n '3,6p'
