"""The package on its own: model conversion, flags restored, errors, the
training-loop helper, signing and scanning."""

import json
import subprocess

import numpy as np
import pytest
import torch

import aegis
from conftest import SmallNet, bar_images, train


class Untraceable(torch.nn.Module):
    """Stands in for a module that neither scripts (*args/**kwargs, which
    TorchScript refuses) nor traces (it refuses the tracer, as modules with
    Python-side state do): aegis calls it back through Python."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, *extra, **options):
        if torch.jit.is_tracing():
            raise RuntimeError("this module keeps Python state and cannot be traced")
        return self.net(x)


def test_import_version_and_catalog():
    assert aegis.__version__
    names = [a["name"] for a in aegis.attacks()]
    assert {"pgd", "fgsm", "apgd", "square", "cw"} <= set(names)


def test_a_module_is_scripted_and_its_flags_come_back(trained, data):
    x, y = data
    net = SmallNet()
    net.load_state_dict(trained.state_dict())
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    m = aegis.Model(net, input_shape=(1, 12, 12))
    assert m.kind == "script" and m.classes == 4
    r = aegis.attack("fgsm", m, x, y, eps=0.05)
    assert (r.x_adv - x).abs().max() <= 0.05 + 1e-6
    assert net.training, "the module's train mode is restored"
    assert all(p.requires_grad for p in net.parameters()), "requires_grad is restored"
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters())), "an attack never changes weights"


def test_a_module_that_neither_scripts_nor_traces_is_called_back(trained, data):
    x, y = data
    with pytest.warns(RuntimeWarning, match="called back through Python"):
        m = aegis.Model(Untraceable(trained), input_shape=(1, 12, 12))
    assert m.kind == "callback"
    scripted = aegis.attack("pgd", trained, x, y, eps=0.2, steps=5)
    called_back = aegis.attack("pgd", m, x, y, eps=0.2, steps=5)
    assert 0 < scripted.success_rate < 1
    assert torch.allclose(called_back.x_adv, scripted.x_adv, atol=1e-5)
    assert torch.equal(called_back.success, scripted.success)
    with pytest.raises(aegis.UnsupportedError, match="neither scripts nor traces"):
        aegis.adversarial_batch(m, x, y, eps=0.1)


def test_errors_are_aegis_errors_with_one_line_messages(trained, data, tmp_path):
    x, y = data
    with pytest.raises(aegis.InvalidArgumentError, match="unknown attack 'nope'") as e:
        aegis.attack("nope", trained, x, y)
    assert isinstance(e.value, ValueError) and isinstance(e.value, aegis.Error)
    assert "\n" not in str(e.value)
    with pytest.raises(aegis.InvalidArgumentError, match="stepz"):
        aegis.attack("pgd", trained, x, y, eps=0.1, stepz=3)
    with pytest.raises(aegis.ShapeMismatchError):
        aegis.attack("pgd", trained, x, y[:3], eps=0.1)
    with pytest.raises(aegis.NotFoundError, match="not found"):
        aegis.Model.load(tmp_path / "missing.pt")
    with pytest.raises(aegis.InvalidArgumentError, match="input_shape"):
        aegis.Model(trained)
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(aegis.CorruptDataError):
        aegis.Model.load(tmp_path / "junk.pt", input_shape=(1, 12, 12))


def test_adversarial_batch_inside_a_training_loop():
    x, y = bar_images(256, seed=3)
    net = SmallNet()
    torch.manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for step in range(80):
        xb, yb = x[step * 6 % 250:][:32], y[step * 6 % 250:][:32]
        net.train()
        x_adv = aegis.adversarial_batch(net, xb, yb, method="pgd-at", eps=0.3, steps=3, step=step)
        assert net.training and all(p.requires_grad for p in net.parameters())
        assert (x_adv - xb).abs().max() <= 0.3 + 1e-6 and not x_adv.requires_grad
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x_adv), yb).backward()
        opt.step()
    net.eval()
    xt, yt = bar_images(128, seed=4)
    robust = aegis.attack("pgd", net, xt, yt, eps=0.3, steps=10)
    plain = train(SmallNet(), x, y, steps=80)
    weak = aegis.attack("pgd", plain, xt, yt, eps=0.3, steps=10)
    # Measured: 1.0 robust accuracy after adversarial training, 0.29 without.
    assert (robust.adv_pred == yt).float().mean() > (weak.adv_pred == yt).float().mean() + 0.3
    for method in ("trades", "fast-at"):
        xa = aegis.adversarial_batch(net, xt[:16], yt[:16], method=method, eps=0.1)
        assert (xa - xt[:16]).abs().max() <= 0.1 + 1e-6


def test_save_sign_verify_scan_and_the_cli_reads_the_metadata(tmp_path, trained, aegis_binary):
    m = aegis.Model(trained, input_shape=(1, 12, 12), class_names=["a", "b", "c", "d"])
    m.save(tmp_path / "m.pt")
    info = json.loads(subprocess.run([aegis_binary, "info", str(tmp_path / "m.pt"), "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["meta"]["input_shape"] == [1, 12, 12] and info["meta"]["class_names"][3] == "d"
    loaded = aegis.Model.load(tmp_path / "m.pt")
    assert loaded.class_names == ["a", "b", "c", "d"] and loaded.classes == 4

    pub = aegis.generate_signing_key(tmp_path / "key.pem")
    aegis.sign(tmp_path / "m.pt", tmp_path / "key.pem")
    assert aegis.verify(tmp_path / "m.pt", pub)["ok"]
    data = bytearray((tmp_path / "m.pt").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "m.pt").write_bytes(bytes(data))
    assert not aegis.verify(tmp_path / "m.pt", pub)["ok"]

    m.save(tmp_path / "clean.pt")
    assert aegis.scan(tmp_path / "clean.pt")["clean"]


def test_privacy_accountants_match_the_cli(aegis_binary):
    from aegis.privacy import Accountant, find_noise_multiplier
    q, steps = 256 / 60000, 14063
    acc = Accountant("rdp")
    for _ in range(3):
        acc.step(1.1, q, steps // 3)
    acc.step(1.1, q, steps - 3 * (steps // 3))
    assert acc.total_steps == steps and len(acc.to_dict()["history"]) == 1  # identical steps merge
    assert acc.epsilon(1e-5) == pytest.approx(2.5967, abs=1e-3)  # Abadi et al.'s MNIST setting, Balle conversion
    resumed = Accountant.from_dict(acc.to_dict())
    assert resumed.epsilon(1e-5) == acc.epsilon(1e-5)
    cli = json.loads(subprocess.run([aegis_binary, "dp", "account", "--sigma", "1.1", "--sample-rate", str(q), "--steps",
                                     str(steps), "--delta", "1e-5", "--accountant", "rdp", "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    assert cli["results"][0]["epsilon"] == pytest.approx(acc.epsilon(1e-5), rel=1e-9)
    sigma = find_noise_multiplier(3.0, 1e-5, sample_rate=q, steps=steps)
    check = Accountant("rdp")
    check.step(sigma, q, steps)
    assert 2.99 <= check.epsilon(1e-5) <= 3.0
    with pytest.raises(aegis.CorruptDataError):
        Accountant.from_dict({"accountant": "rdp", "history": [{"noise_multiplier": -1}]})
    with pytest.raises(aegis.InvalidArgumentError, match="sample rate"):
        acc.step(1.0, 1.5)


def test_explain_integrated_gradients_is_complete_and_matches_the_cli(tmp_path, trained, data, aegis_binary):
    x, y = data
    e = aegis.explain("ig", trained, x[:6], steps=48)
    assert e.values.shape == x[:6].shape and e.method == "integrated-gradients"
    assert torch.equal(e.target, trained(x[:6]).argmax(1))
    sums = e.values.double().flatten(1).sum(1)
    assert torch.allclose(e.gap, sums - (e.score - e.baseline_score).double(), atol=1e-5)
    assert e.gap.abs().max() < 0.05 * (e.score - e.baseline_score).abs().max()
    # With the IG formula written here by hand in PyTorch (Gauss-Legendre nodes from numpy).
    nodes, weights = np.polynomial.legendre.leggauss(48)
    alphas, w = (nodes + 1) / 2, weights / 2
    xb = x[:6]
    grads = torch.zeros_like(xb)
    for a, wk in zip(alphas, w):
        p = (float(a) * xb).requires_grad_(True)
        trained(p).gather(1, e.target.view(-1, 1)).sum().backward()
        grads += float(wk) * p.grad
    assert torch.allclose(e.values, xb * grads, atol=1e-5, rtol=1e-4)

    export_path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(trained), str(export_path))
    np.save(tmp_path / "x.npy", x[:6].numpy())
    np.save(tmp_path / "y.npy", y[:6].numpy())
    cli = json.loads(subprocess.run([aegis_binary, "explain", "-m", str(export_path), "--data", str(tmp_path / "x.npy"),
                                     "--labels", str(tmp_path / "y.npy"), "--method", "ig", "--steps", "48", "-o",
                                     str(tmp_path / "ex"), "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    values_cli = torch.from_numpy(np.load(tmp_path / "ex" / "attributions.npy"))
    assert torch.allclose(values_cli, e.values, atol=1e-6)
    assert [s["completeness_gap"] for s in cli["samples"]] == pytest.approx(e.gap.tolist(), abs=1e-6)
    with pytest.raises(aegis.InvalidArgumentError, match="takes no parameter 'stepz'"):
        aegis.explain("ig", trained, x[:2], stepz=3)
    sg = aegis.explain("smoothgrad", trained, x[:2], samples=4, seed=1)
    assert sg.gap is None and torch.equal(sg.values, aegis.explain("smoothgrad", trained, x[:2], samples=4, seed=1).values)


def test_counterfactuals_move_to_the_runner_up_and_gradcam_needs_feature_maps():
    torch.manual_seed(0)
    net = torch.nn.Linear(16, 3).eval()
    x = torch.rand(4, 16) * 0.4 + 0.3
    logits = net(x).detach()
    e = aegis.explain("counterfactual", net, x, kappa=0.05)
    assert e.method == "counterfactual" and e.gap is None
    assert torch.equal(e.target, logits.argmax(1))
    runner_up = logits.scatter(1, e.target.view(-1, 1), float("-inf")).argmax(1)
    moved = x + e.values
    assert moved.min() >= 0 and moved.max() <= 1
    assert torch.equal(net(moved).argmax(1), runner_up)
    # The sparse one changes fewer features for the same move.
    l1 = aegis.explain("counterfactual", net, x, norm="l1", kappa=0.05)
    assert torch.equal(net(x + l1.values).argmax(1), runner_up)
    assert (l1.values.abs() > 1e-3).sum() < (e.values.abs() > 1e-3).sum()
    with pytest.raises(aegis.InvalidArgumentError, match="'to' is a class index"):
        aegis.explain("counterfactual", net, x, to="best")
    with pytest.raises(aegis.UnsupportedError, match="feature_maps"):
        aegis.explain("gradcam", net, x)


def test_black_box_explainers_on_a_torch_linear_module_give_the_closed_forms():
    torch.manual_seed(0)
    net = torch.nn.Linear(16, 3).eval()
    x, bg = torch.rand(5, 16), torch.rand(10, 16)
    target = torch.tensor([0, 1, 2, 1, 0])
    w = net.weight.detach()[target]
    # Sampled KernelSHAP (16 features > max_exact 12) with a background set: w * (x - mean(background)).
    shap = aegis.explain("kernelshap", net, x, target=target, background=bg, samples=300)
    assert shap.method == "kernel-shap"
    assert torch.allclose(shap.values, w * (x - bg.mean(0)), atol=1e-5)
    assert shap.gap.abs().max() < 1e-4
    lime = aegis.explain("lime", net, x, target=target, ridge=0.0, samples=200)
    assert torch.allclose(lime.values, w * x, atol=1e-4) and lime.fidelity.min() > 0.999
    occ = aegis.explain("occlusion", net, x, target=target, window=1, stride=1)
    assert torch.allclose(occ.values, w * x, atol=1e-5)
    with pytest.raises(aegis.InvalidArgumentError, match="background set is for kernelshap"):
        aegis.explain("ig", net, x, background=bg)


class _Rounded(torch.nn.Module):
    """A gradient-killing layer: the input rounded to quarter steps."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.lin(torch.round(x * 4.0) / 4.0)


def test_preflight_refuses_a_gradient_free_model_unless_forced():
    torch.manual_seed(0)
    net = _Rounded().eval()
    x = torch.rand(16, 6)
    y = net(x).argmax(1)
    with pytest.raises(aegis.InvalidArgumentError, match="preflight refused.*gradients-nonzero"):
        aegis.evaluate(net, x, y, eps=0.1, budget="quick", sanity=False, attacks=["pgd"])
    ev = aegis.evaluate(net, x, y, eps=0.1, budget="quick", sanity=False, attacks=["pgd"], force=True)
    verdicts = {c["name"]: c["verdict"] for c in ev.preflight}
    assert verdicts["gradients-nonzero"] == "refuse" and verdicts["logits-not-probabilities"] == "pass"
    assert any("gradients-nonzero" in w for w in ev.warnings)
