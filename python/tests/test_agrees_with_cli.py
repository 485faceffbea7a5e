"""The package and the CLI are one library: a plain nn.Module defined here is
attacked with PGD, evaluated and audited from Python, and the same model
exported to TorchScript (as users export it, without aegis metadata) gives
the same answers through the aegis binary."""

import json

import numpy as np
import torch

import aegis
from conftest import run_cli, save_npy


def export(net, path):
    torch.jit.save(torch.jit.script(net), str(path))


def test_pgd_from_python_equals_the_cli(tmp_path, trained, data, aegis_binary):
    x, y = data
    r = aegis.attack("pgd", trained, x, y, eps=0.2, steps=10)
    assert r.x_adv.shape == x.shape
    assert (r.x_adv - x).abs().max() <= 0.2 + 1e-6
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert 0 < r.success_rate < 1
    assert r.to_dict()["success_rate"] == r.success_rate

    export(trained, tmp_path / "net.pt")
    save_npy(tmp_path / "x.npy", x)
    save_npy(tmp_path / "y.npy", y)
    cli = run_cli(aegis_binary, "attack", "-m", str(tmp_path / "net.pt"), "--data", str(tmp_path / "x.npy"),
                  "--labels", str(tmp_path / "y.npy"), "-a", "pgd", "--eps", "0.2", "--steps", "10", "-o",
                  str(tmp_path / "atk"))
    assert cli["result"]["success_rate"] == r.success_rate
    assert cli["options"] == r.options
    x_adv_cli = torch.from_numpy(np.load(tmp_path / "atk" / "x_adv.npy"))
    assert torch.allclose(x_adv_cli, r.x_adv, atol=1e-5)
    assert torch.equal(torch.from_numpy(np.load(tmp_path / "atk" / "adv_pred.npy")), r.adv_pred)


def test_evaluate_from_python_equals_the_cli(tmp_path, trained, data, aegis_binary):
    x, y = data
    ev = aegis.evaluate(trained, x[:48], y[:48], eps=0.2, budget="quick", sanity=False)
    assert 0 <= ev.robust_accuracy <= ev.clean_accuracy <= 1
    assert [s["attack"] for s in ev.stages][:2] == ["apgd-ce", "apgd-t"]

    export(trained, tmp_path / "net.pt")
    save_npy(tmp_path / "x.npy", x)
    save_npy(tmp_path / "y.npy", y)
    cli = run_cli(aegis_binary, "evaluate", "-m", str(tmp_path / "net.pt"), "--data", str(tmp_path / "x.npy"),
                  "--labels", str(tmp_path / "y.npy"), "--eps", "0.2", "--budget", "quick", "--no-sanity", "-n",
                  "48")["evaluation"]
    assert cli["robust_accuracy"] == ev.robust_accuracy
    assert cli["clean_accuracy"] == ev.clean_accuracy
    assert [s["broken"] for s in cli["stages"]] == [s["broken"] for s in ev.stages]


def test_audit_from_python_equals_the_cli(tmp_path, trained, data, aegis_binary):
    x, y = data
    a = aegis.audit(trained, x, y, out_dir=str(tmp_path / "py"), budget="quick", samples=32, html=False)
    assert a.findings, "a standard CNN has evasion findings"
    assert a.worst in ("info", "low", "medium", "high", "critical")
    # A model the user brought: the mitigation fine-tunes it rather than training a built-in network.
    assert any("aegis train" in f["mitigation"] and "--init" in f["mitigation"] for f in a.findings)

    export(trained, tmp_path / "net.pt")
    save_npy(tmp_path / "x.npy", x)
    save_npy(tmp_path / "y.npy", y)
    run_cli(aegis_binary, "audit", "-m", str(tmp_path / "net.pt"), "--data", str(tmp_path / "x.npy"), "--labels",
            str(tmp_path / "y.npy"), "--budget", "quick", "--samples", "32", "--out", str(tmp_path / "cli"))
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())

    def graded(report):
        return sorted((f["id"], f["severity"], round(f["value"], 6)) for f in report["findings"])

    assert graded(cli) == graded(a.report)
    def untimed(j):
        if isinstance(j, dict):
            return {k: untimed(v) for k, v in j.items() if k not in ("seconds", "run")}
        if isinstance(j, list):
            return [untimed(v) for v in j]
        return j

    metrics = {c["id"]: untimed(c["metrics"]) for c in a.report["checks"]}
    assert sorted(metrics) == sorted(c["id"] for c in cli["checks"])
    for c in cli["checks"]:
        assert untimed(c["metrics"]) == metrics[c["id"]], c["id"]
