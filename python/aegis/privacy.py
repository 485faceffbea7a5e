"""Differential-privacy accounting: the same accountants as ``aegis dp``.

An accountant records the steps of Poisson-sampled DP-SGD (noise multiplier
sigma, sampling rate q, number of steps) and says what (epsilon, delta) the
trained parameters satisfy with respect to the training data. "rdp" is Renyi
DP with the Balle et al. 2020 conversion (as Opacus and TF Privacy); "prv" is
the numerical PRV accountant (Gopi et al. 2021), tighter, with an upper bound
(the guarantee), an estimate and a lower bound. See docs/dp.md.

    from aegis.privacy import Accountant, find_noise_multiplier
    sigma = find_noise_multiplier(3.0, 1e-5, sample_rate=256 / 60000, steps=7032)
    acc = Accountant("rdp")
    for step in range(7032):
        ...                                   # one DP-SGD step with noise sigma
        acc.step(sigma, 256 / 60000)
    acc.epsilon(1e-5)                         # <= 3.0
    state = acc.to_dict()                     # save with the checkpoint
    acc = Accountant.from_dict(state)         # a resumed run keeps counting
"""

from __future__ import annotations

import json

from . import _aegis


class Accountant:
    """A privacy accountant ("rdp" or "prv") and the history it has counted."""

    def __init__(self, name: str = "rdp"):
        self._acc = _aegis.make_accountant(name)

    @classmethod
    def from_dict(cls, state: dict) -> "Accountant":
        """The accountant ``to_dict()`` described, history included (CorruptDataError if malformed)."""
        self = cls.__new__(cls)
        self._acc = _aegis.accountant_from_json(json.dumps(state))
        return self

    @property
    def name(self) -> str:
        return self._acc.name

    @property
    def total_steps(self) -> int:
        return self._acc.total_steps

    def step(self, noise_multiplier: float, sample_rate: float, steps: int = 1) -> None:
        """Records ``steps`` steps with noise multiplier sigma > 0 and sampling rate q in (0, 1]."""
        self._acc.step(noise_multiplier, sample_rate, steps)

    def epsilon(self, delta: float) -> float:
        """The epsilon spent at ``delta`` (for PRV, its upper bound): the guarantee."""
        return self._acc.epsilon(delta)

    def details(self, delta: float) -> dict:
        """rdp: epsilon and the order that gave it; prv: epsilon (upper), estimate and lower."""
        return self._acc.details(delta)

    def to_dict(self) -> dict:
        """{"accountant": name, "history": [{"noise_multiplier", "sample_rate", "steps"}, ...]}"""
        return json.loads(self._acc.state_json())

    def __repr__(self) -> str:
        return f"Accountant({self.name!r}, steps={self.total_steps})"


def find_noise_multiplier(epsilon: float, delta: float, *, sample_rate: float, steps: int, accountant: str = "rdp",
                          tolerance: float = 0.01) -> float:
    """The smallest noise multiplier whose epsilon at ``delta`` over ``steps``
    steps at ``sample_rate`` is at most ``epsilon`` (within ``tolerance`` below it)."""
    sigma, _ = _aegis.find_noise_multiplier(epsilon, delta, sample_rate, steps, accountant, tolerance)
    return sigma
