"""Turning what a PyTorch user has into an aegis model.

A ``torch.jit.ScriptModule`` passes straight through (its parameters are
shared, not copied). A plain ``torch.nn.Module`` is scripted, or traced
when scripting fails (the trace is checked against the eager module on
random inputs), or, when neither gives the same answers, called back through
Python for every forward (slower: each forward takes the GIL; gradients still
flow, since PyTorch and aegis share one LibTorch).

While aegis works on a model it puts it in eval mode with its parameters
frozen (so attacks never build weight gradients and can never change it);
``borrowed`` puts the user's flags back afterwards, so a model can be
attacked in the middle of the user's own training loop.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from typing import Optional, Sequence

import torch

from . import _aegis


class Model:
    """A model as aegis sees it: a module plus its metadata.

    ``Model(module, input_shape=(1, 28, 28), classes=10, clip=(0, 1),
    mean=None, std=None, class_names=None)``. ``input_shape`` is one sample's
    shape without the batch dimension (required for modules; the functions
    that take data fill it from the data when it is missing); ``classes`` is
    found by one probe forward when not given. ``mean``/``std`` are a
    normalisation aegis applies before calling the module (inputs stay raw,
    in ``clip``). ``Model.load(path, **overrides)`` opens a TorchScript file.
    """

    def __init__(self, module, input_shape: Optional[Sequence[int]] = None, classes: Optional[int] = None,
                 clip=(0.0, 1.0), mean=None, std=None, class_names=None, *, mode: str = "auto"):
        if isinstance(module, Model):
            raise TypeError("already an aegis.Model")
        if not callable(module):
            raise TypeError(f"the model must be a torch.nn.Module or a callable, got {type(module).__name__}")
        if input_shape is None:
            raise _aegis.InvalidArgumentError("give the model's input_shape (one sample's shape, e.g. (1, 28, 28))")
        self.module = module
        self.input_shape = [int(d) for d in input_shape]
        self.clip = (float(clip[0]), float(clip[1]))
        self.mean = list(mean) if mean is not None else []
        self.std = list(std) if std is not None else []
        self.class_names = list(class_names) if class_names is not None else []
        if mode not in ("auto", "script", "trace", "callback"):
            raise _aegis.InvalidArgumentError("mode is auto, script, trace or callback")
        with borrowed(module):
            self.classes = int(classes) if classes is not None else self._probe_classes()
            self.runner, self.kind = _convert(module, self._probe_input(4), mode)
        self._core = None

    @classmethod
    def load(cls, path: str, **overrides) -> "Model":
        """A TorchScript file, with its aegis metadata or the given overrides
        (input_shape, classes, clip, mean, std, class_names)."""
        self = cls.__new__(cls)
        self._core = _aegis.model_from_file(str(path), json.dumps(_overrides(overrides)))
        meta = json.loads(self._core.meta_json())
        self.module = None
        self.runner, self.kind = None, "file"
        self.input_shape = meta["input_shape"]
        self.classes = meta["num_classes"]
        self.clip = (meta["clip_min"], meta["clip_max"])
        self.mean, self.std = meta.get("mean", []), meta.get("std", [])
        self.class_names = meta.get("class_names", [])
        return self

    def meta(self) -> dict:
        return {"architecture": "torchscript", "input_shape": self.input_shape, "num_classes": self.classes,
                "clip_min": self.clip[0], "clip_max": self.clip[1], "mean": self.mean, "std": self.std,
                "class_names": self.class_names}

    def core(self):
        """The C++ classifier (rebuilt for every job of a live module, so it
        always sees the module's current weights and flags)."""
        if self._core is not None:
            return self._core
        meta = json.dumps(self.meta())
        if self.kind == "callback":
            return _aegis.model_from_callable(self.runner, meta)
        return _aegis.model_from_script(self.runner, meta)

    @contextlib.contextmanager
    def session(self):
        """The C++ classifier, with the user's module flags restored after."""
        with borrowed(self.module):
            yield self.core()

    def save(self, path: str) -> None:
        """Writes a TorchScript archive with aegis metadata inside, as
        ``aegis model meta`` would (not for callback models)."""
        with self.session() as core:
            core.save(str(path))

    def _probe_input(self, n: int) -> torch.Tensor:
        lo, hi = self.clip
        g = torch.Generator().manual_seed(0)
        return lo + (hi - lo) * torch.rand([n] + self.input_shape, generator=g)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if not self.mean:
            return x
        shape = [1, len(self.mean)] + [1] * (len(self.input_shape) - 1) if len(self.mean) > 1 else [1]
        return (x - torch.tensor(self.mean).view(shape)) / torch.tensor(self.std).view(shape)

    def _probe_classes(self) -> int:
        with torch.no_grad():
            out = self.module(self._normalise(self._probe_input(1)))
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise _aegis.UnsupportedError("the model's forward must return logits [batch, classes]")
        return int(out.shape[1])

    def __repr__(self) -> str:
        return f"aegis.Model({self.kind}, input_shape={self.input_shape}, classes={self.classes})"


@contextlib.contextmanager
def borrowed(module):
    """Restores a module's train/eval mode and each parameter's
    requires_grad after aegis has used it."""
    if module is None or not hasattr(module, "parameters"):
        yield
        return
    training = bool(getattr(module, "training", False))
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        module.train(training)
        for p, flag in flags:
            p.requires_grad_(flag)


def as_model(model, x: Optional[torch.Tensor] = None, **meta) -> Model:
    """Model, ScriptModule, nn.Module, callable or file path -> Model. The
    sample shape comes from ``x`` when the caller gives no input_shape."""
    if isinstance(model, Model):
        if meta:
            raise _aegis.InvalidArgumentError("metadata keywords go to aegis.Model(...), not to an existing Model")
        return model
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        return Model.load(str(model), **meta)
    if meta.get("input_shape") is None and x is not None:
        meta["input_shape"] = list(x.shape[1:])
    return Model(model, **meta)


def _overrides(o: dict) -> dict:
    known = {"input_shape", "classes", "clip", "mean", "std", "class_names"}
    unknown = set(o) - known
    if unknown:
        raise _aegis.InvalidArgumentError(f"unknown model metadata {sorted(unknown)} (known: {sorted(known)})")
    out = {k: v for k, v in o.items() if v is not None}
    if "input_shape" in out:
        out["input_shape"] = [int(d) for d in out["input_shape"]]
    if "clip" in out:
        out["clip"] = [float(c) for c in out["clip"]]
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def _convert(module, probe: torch.Tensor, mode: str):
    """(runner, kind): a ScriptModule ("script"/"trace") or the module itself ("callback")."""
    if isinstance(module, torch.jit.ScriptModule):
        return module, "script"
    if mode == "callback" or not isinstance(module, torch.nn.Module):
        return module, "callback"
    with torch.no_grad():
        eager = module(probe)
    errors = []
    if mode in ("auto", "script"):
        try:
            scripted = torch.jit.script(module)
            with torch.no_grad():
                if _same(scripted(probe), eager):
                    return scripted, "script"
            errors.append("the scripted module answers differently")
        except Exception as e:  # TorchScript refuses many Python constructs
            errors.append(f"script: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if mode in ("auto", "trace"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(module, probe[:1], check_trace=False)
            other = probe.flip(0) * 0.5 + 0.25  # inputs the trace did not see
            with torch.no_grad():
                if _same(traced(probe), eager) and _same(traced(other), module(other)):
                    return traced, "trace"
            errors.append("the traced module answers differently (data-dependent control flow?)")
        except Exception as e:
            errors.append(f"trace: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if mode != "auto":
        raise _aegis.UnsupportedError(f"cannot convert the module by {mode}: {'; '.join(errors)}")
    warnings.warn("aegis: the module neither scripts nor traces (" + "; ".join(errors) +
                  "); it is called back through Python for every forward, which is slower", RuntimeWarning,
                  stacklevel=4)
    return module, "callback"
