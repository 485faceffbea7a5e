#!/usr/bin/python3
"""Reference PGD in PyTorch on the same TorchScript model aegis attacks: the
"what a reference PyTorch PGD reaches on the same model" of the issue.
Linf, random start, sign steps, projection; torchattacks' defaults (alpha
2/255) and aegis's (2.5 eps / steps).

  /usr/bin/python3 bench/reference_pgd.py out/evasion-eval/model.pt 1000 0.1 20 [seeds]

With `seeds` > 1 each setting runs once per random-start seed 0..seeds-1.
"""
import gzip, struct, sys, time
import numpy as np
import torch

def idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

def main():
    model_path, n, eps, steps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    seeds = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    torch.set_num_threads(2)
    d = "/usr/share/datasets/fashion-mnist/"
    import os
    names = os.listdir(d)
    img = [x for x in names if x.startswith("t10k-images")][0]
    lab = [x for x in names if x.startswith("t10k-labels")][0]
    x = torch.tensor(idx(d + img)[:n].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.tensor(idx(d + lab)[:n].astype(np.int64))
    model = torch.jit.load(model_path).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    settings = [(f"{name}, seed {seed}", alpha, seed) for seed in range(seeds)
                for name, alpha in (("torchattacks alpha 2/255", 2 / 255), ("aegis alpha 2.5 eps/steps", 2.5 * eps / steps))]
    for name, alpha, seed in settings:
        torch.manual_seed(seed)
        t = time.time()
        adv_all = []
        for s in range(0, n, 250):
            xb, yb = x[s:s + 250], y[s:s + 250]
            adv = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
            for _ in range(steps):
                adv.requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(model(adv), yb)
                g, = torch.autograd.grad(loss, adv)
                adv = torch.min(torch.max(adv.detach() + alpha * g.sign(), xb - eps), xb + eps).clamp(0, 1)
            adv_all.append(adv)
        adv = torch.cat(adv_all)
        with torch.no_grad():
            acc = (model(adv).argmax(1) == y).float().mean().item()
            clean = (model(x).argmax(1) == y).float().mean().item()
        print(f"reference PGD-{steps} ({name}): clean {clean:.4f} robust {acc:.4f} in {time.time() - t:.1f}s")

if __name__ == "__main__":
    main()
