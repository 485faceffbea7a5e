"""aegis for PyTorch users: attack, evaluate, harden, audit, sign and scan
models from Python, with the same C++ library as the ``aegis`` CLI.

    import torch, aegis
    net = MyNet()                                    # any torch.nn.Module
    r = aegis.attack("pgd", net, x, y, eps=0.1, steps=20)
    r.x_adv, r.success_rate, r.to_dict()             # to_dict(): the CLI's JSON
    ev = aegis.evaluate(net, x, y, eps=0.1)          # AutoAttack protocol + sanity checks
    ev.robust_accuracy, ev.warnings

    for x, y in loader:                              # your own training loop
        x_adv = aegis.adversarial_batch(net, x, y, method="pgd-at", eps=0.1)
        loss = F.cross_entropy(net(x_adv), y); ...

Models: a ``torch.jit.ScriptModule`` passes straight through; a plain
``nn.Module`` is scripted or traced on the way in, or called back through
Python when neither works (slower). Metadata (input_shape, classes, clip,
mean, std, class_names) are keyword arguments, or build an ``aegis.Model``
once. A path to a TorchScript file works too (its aegis metadata is read).

Errors are ``aegis.Error`` subclasses with the CLI's one-line messages:
``InvalidArgumentError`` (also a ValueError), ``NotFoundError``,
``CorruptDataError``, ``ShapeMismatchError``, ``PermissionDeniedError``,
``UnsupportedError``, ``IoError``, ``InternalError`` and the gateway's
``UnauthenticatedError`` and ``RateLimitedError``. Long C++ work releases
the GIL and reports progress like the CLI (``aegis.set_progress("quiet")``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import torch  # first: the C++ module needs LibTorch's Python bindings loaded

from . import _aegis
from ._aegis import (CorruptDataError, Error, InternalError, InvalidArgumentError, IoError, NotFoundError,
                     PermissionDeniedError, RateLimitedError, ShapeMismatchError, UnauthenticatedError,
                     UnsupportedError)
from ._models import Model, as_model, borrowed
from . import privacy

__version__ = _aegis.__version__

__all__ = [
    "Model", "attack", "explain", "Explanation", "evaluate", "adversarial_batch", "audit", "sign", "verify", "scan", "generate_signing_key",
    "attacks", "set_progress", "seed", "privacy", "AttackResult", "Evaluation", "AuditResult", "Error", "InvalidArgumentError",
    "NotFoundError", "CorruptDataError", "ShapeMismatchError", "PermissionDeniedError", "UnauthenticatedError",
    "RateLimitedError", "UnsupportedError", "IoError", "InternalError",
]

_META_KEYS = ("input_shape", "classes", "clip", "mean", "std", "class_names")


def _split_meta(kwargs: dict) -> dict:
    return {k: kwargs.pop(k) for k in _META_KEYS if k in kwargs}


def _check_xy(x, y):
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InvalidArgumentError("x and y must be torch tensors")
    if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ShapeMismatchError(f"x must be [N, ...] and y [N], got {list(x.shape)} and {list(y.shape)}")
    return x.detach().float().contiguous(), y.detach().long().contiguous()


@dataclass
class AttackResult:
    """What an attack did: ``x_adv`` [N, ...], ``success`` [N] bool,
    ``adv_pred`` [N], per-sample norms ``l0``/``l2``/``linf``, ``targets``
    (targeted runs), and the summary of the CLI's result JSON."""

    attack: str
    options: dict
    x_adv: torch.Tensor
    success: torch.Tensor
    adv_pred: torch.Tensor
    l0: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor
    targets: Optional[torch.Tensor]
    summary: dict = field(repr=False)

    @property
    def success_rate(self) -> float:
        return float(self.summary.get("success_rate", 0.0))

    @property
    def queries(self) -> int:
        return int(self.summary.get("queries", 0))

    @property
    def seconds(self) -> float:
        return float(self.summary.get("seconds", 0.0))

    def to_dict(self) -> dict:
        """The same JSON as the ``result`` of ``aegis attack --json``."""
        return json.loads(json.dumps(self.summary))


def attack(name: str, model, x: torch.Tensor, y: torch.Tensor, *, targets: Optional[torch.Tensor] = None,
           batch_size: int = 256, seed: int = 0, **params) -> AttackResult:
    """Runs one attack of the registry (``aegis.attacks()`` lists them) on
    ``model`` over ``x``, ``y`` (raw inputs in the model's range). Keyword
    arguments are the attack's parameters, as ``aegis attack --param``
    takes them (``eps``, ``norm="linf"``, ``steps``, ``restarts``,
    ``targeted="random"``...); unknown ones are refused by name. Model
    metadata keywords (``input_shape``, ``classes``, ``clip``, ``mean``,
    ``std``, ``class_names``) describe a module that is not an aegis.Model."""
    meta = _split_meta(params)
    x, y = _check_xy(x, y)
    m = as_model(model, x, **meta)
    params.setdefault("seed", seed)
    with m.session() as core:
        out = _aegis.attack(core, name, json.dumps(params), x, y, targets, int(batch_size))
    return AttackResult(attack=out["attack"], options=json.loads(out["options_json"]), x_adv=out["x_adv"],
                        success=out["success"], adv_pred=out["adv_pred"], l0=out["l0"], l2=out["l2"],
                        linf=out["linf"], targets=out["targets"], summary=json.loads(out["json"]))


@dataclass
class Explanation:
    """Attributions shaped like the input (``values``), the explained class per
    sample (``target``), its logit (``score``) and, for methods with a
    baseline, ``baseline_score`` and the completeness ``gap`` (sum of
    attributions minus (score - baseline_score))."""

    method: str
    values: torch.Tensor = field(repr=False)
    target: torch.Tensor = field(repr=False)
    score: torch.Tensor = field(repr=False)
    baseline_score: Optional[torch.Tensor] = field(repr=False)
    gap: Optional[torch.Tensor] = field(repr=False)
    summary: dict = field(repr=False)
    fidelity: Optional[torch.Tensor] = field(default=None, repr=False)  # LIME: weighted R^2 of the surrogate

    def to_dict(self) -> dict:
        """The same JSON as ``aegis explain --json`` (less the file paths)."""
        return json.loads(json.dumps(self.summary))


def explain(method: str, model, x: torch.Tensor, *, target: Optional[torch.Tensor] = None, seed: int = 0,
            background: Optional[torch.Tensor] = None, **params) -> Explanation:
    """Attributions of ``model``'s decisions on ``x`` (raw inputs in the model's
    range) to the input features, for the class ``target`` per sample (by
    default the predicted one). ``method`` is saliency, gradient-x-input, ig,
    gradcam (``layer``, ``relu``), smoothgrad, smoothgrad-sq, vargrad, the
    black-box occlusion, ablation, kernelshap (``background``: a set of inputs
    [R, ...] instead of the baseline) and lime, or counterfactual (``to``,
    ``norm``: the values are the change that moves each sample to another
    class); keyword arguments are its parameters (``steps``,
    ``rule``, ``baseline``, ``tunnel``, ``samples``, ``mask``, ``patch``...;
    see docs/explain.md), unknown ones refused by name."""
    meta = _split_meta(params)
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise InvalidArgumentError("x must be a tensor [N, ...]")
    x = x.detach().to(torch.float32).contiguous()
    m = as_model(model, x, **meta)
    params.setdefault("seed", seed)
    with m.session() as core:
        out = _aegis.explain(core, method, json.dumps(params), x, target, background)
    summary = json.loads(out["json"])
    return Explanation(method=summary["method"], values=out["values"], target=out["target"], score=out["score"],
                       baseline_score=out["baseline_score"], gap=out["gap"], summary=summary,
                       fidelity=out["fidelity"])


@dataclass
class Evaluation:
    """The AutoAttack-protocol evaluation: ``robust_accuracy``,
    ``clean_accuracy``, per-stage figures, sanity checks and warnings (a
    warning means the figure may overstate robustness)."""

    data: dict = field(repr=False)

    @property
    def robust_accuracy(self) -> float:
        return float(self.data["robust_accuracy"])

    @property
    def clean_accuracy(self) -> float:
        return float(self.data["clean_accuracy"])

    @property
    def stages(self) -> list:
        return self.data.get("stages", [])

    @property
    def sanity(self) -> list:
        return self.data.get("sanity_checks", self.data.get("sanity", []))

    @property
    def preflight(self) -> list:
        """The checks run before any attack: dicts with ``name``,
        ``verdict`` (pass, warn, refuse) and ``detail``."""
        return self.data.get("preflight", [])

    @property
    def warnings(self) -> list:
        return self.data.get("warnings", [])

    def to_dict(self) -> dict:
        """The same JSON as the ``evaluation`` of ``aegis evaluate --json``."""
        return json.loads(json.dumps(self.data))

    def __repr__(self) -> str:
        return (f"Evaluation(robust_accuracy={self.robust_accuracy:.4f}, clean_accuracy={self.clean_accuracy:.4f}, "
                f"warnings={len(self.warnings)})")


def evaluate(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf", budget: str = "standard",
             sanity: bool = True, sanity_samples: int = 200, batch_size: int = 256, seed: int = 0,
             attacks: Optional[list] = None, eot: int = 1, per_sample: bool = False, force: bool = False,
             **meta) -> Evaluation:
    """Robust accuracy by the AutoAttack protocol (APGD-CE, targeted
    APGD-DLR, Square, each on what is left) with the sanity checks that flag
    gradient masking, as ``aegis evaluate``. ``attacks`` replaces the
    ensemble: names or dicts like ``{"attack": "apgd", "steps": 50}``.
    Preflight checks run first; a refusal (data outside the model's range,
    an eps covering the input box, no gradients for gradient-only attacks)
    raises InvalidArgumentError unless ``force``."""
    unknown = set(meta) - set(_META_KEYS)
    if unknown:
        raise InvalidArgumentError(f"evaluate: unknown keyword(s) {sorted(unknown)}")
    x, y = _check_xy(x, y)
    m = as_model(model, x, **meta)
    options = {"eps": float(eps), "norm": norm, "budget": budget, "sanity": bool(sanity),
               "sanity_samples": int(sanity_samples), "batch_size": int(batch_size), "seed": int(seed),
               "attacks": attacks, "eot": int(eot), "per_sample": bool(per_sample), "force": bool(force)}
    with m.session() as core:
        return Evaluation(json.loads(_aegis.evaluate(core, x, y, json.dumps(options))))


def adversarial_batch(model, x: torch.Tensor, y: torch.Tensor, *, method: str = "pgd-at", eps: float,
                      norm: str = "linf", steps: Optional[int] = None, step_size: Optional[float] = None,
                      beta: Optional[float] = None, random_start: Optional[bool] = None, epoch: int = 0,
                      epochs: Optional[int] = None, step: int = 0, steps_per_epoch: Optional[int] = None,
                      warmup_epochs: float = 0.0, seed: int = 0, **meta) -> torch.Tensor:
    """The adversarial inputs that aegis's PGD-AT, TRADES or fast-AT
    objective (``method``) would train on for this batch, for your own
    training loop. Crafted against the model in eval mode; the module's
    train/eval mode and ``requires_grad`` flags are restored, so the next
    ``loss.backward()`` works as usual. ``epoch``/``step`` (and ``epochs``,
    ``steps_per_epoch`` with ``warmup_epochs``) reproduce the CLI's warm-up
    and random starts exactly."""
    x, y = _check_xy(x, y)
    m = as_model(model, x, **meta)
    options: dict[str, Any] = {"eps": float(eps), "norm": norm, "epoch": int(epoch), "step": int(step),
                               "warmup_epochs": float(warmup_epochs), "seed": int(seed)}
    for k, v in (("steps", steps), ("step_size", step_size), ("beta", beta), ("random_start", random_start),
                 ("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if v is not None:
            options[k] = v
    with m.session() as core:
        return _aegis.adversarial_batch(core, method, x, y, json.dumps(options))


@dataclass
class AuditResult:
    """An audit: ``report`` is exactly report.json; ``worst`` the most
    severe finding; ``json_path``/``html_path`` the files written."""

    report: dict = field(repr=False)
    worst: str
    json_path: str
    html_path: str
    resumed_checks: int = 0

    @property
    def findings(self) -> list:
        return self.report.get("findings", [])

    @property
    def verdict(self) -> dict:
        return self.report.get("verdict", {})

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.report))


def audit(model, x: torch.Tensor, y: torch.Tensor, *, out_dir: str, budget: str = "quick",
          suite: Optional[str] = None, seed: int = 0, samples: int = 0, resume: bool = False, html: bool = True,
          model_path: Optional[str] = None, **meta) -> AuditResult:
    """The penetration test of ``aegis audit``: every check of the built-in
    suite ``budget`` (quick, standard, thorough) or a suite TOML file, graded
    into findings mapped to MITRE ATLAS and the OWASP ML Top 10;
    report.json and report.html go to ``out_dir``."""
    x, y = _check_xy(x, y)
    m = as_model(model, x, **meta)
    if model_path is None and isinstance(model, (str, os.PathLike)):
        model_path = str(model)
    options = {"out_dir": str(out_dir), "budget": budget, "suite": suite or "", "seed": int(seed),
               "samples": int(samples), "resume": bool(resume), "html": bool(html), "model_path": model_path or "",
               "data_source": "python"}
    with m.session() as core:
        out = _aegis.audit(core, x, y, json.dumps(options))
    return AuditResult(report=json.loads(out["json"]), worst=out["worst"], json_path=out["json_path"],
                       html_path=out["html_path"], resumed_checks=out["resumed_checks"])


def sign(path, private_key, signature_path: Optional[str] = None) -> dict:
    """Signs a model file or directory (OpenSSF model-signing v1 bundle)."""
    return json.loads(_aegis.sign(str(path), str(private_key), str(signature_path or "")))


def verify(path, public_key, signature_path: Optional[str] = None) -> dict:
    """Checks a model's signature: ``{"ok": bool, "reason": ..., ...}``."""
    return json.loads(_aegis.verify(str(path), str(public_key), str(signature_path or "")))


def scan(path) -> dict:
    """Scans a model file for unsafe pickle imports without loading it."""
    return json.loads(_aegis.scan(str(path)))


def generate_signing_key(private_path) -> str:
    """Writes an EC P-256 key pair (PEM; the public key beside it); returns the public key's path."""
    return _aegis.generate_signing_key(str(private_path))


def attacks() -> list:
    """The attack registry: name, summary, white_box."""
    return json.loads(_aegis.attack_catalog_json())


def set_progress(mode: str) -> None:
    """Progress output of long jobs: "auto" (a bar at a terminal), "bar", "lines" or "quiet"."""
    _aegis.set_progress(mode)


def seed(value: int) -> None:
    """Seeds LibTorch's global generator, as the CLI's --seed."""
    _aegis.seed_everything(int(value))
