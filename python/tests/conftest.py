"""Shared fixtures: a small PyTorch model defined here, trained on synthetic
"bar" images in a second, and the aegis binary for the CLI cross-checks."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

import aegis

aegis.set_progress("quiet")
torch.set_num_threads(1)  # as the CLI under ctest (AEGIS_THREADS=1): the same float results


def bar_images(n: int, classes: int = 4, seed: int = 0):
    """12x12 images: class c is a bright bar in row band c, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = 0.2 * torch.rand(n, 1, 12, 12, generator=g)
    for i in range(n):
        r = 1 + 3 * int(y[i])
        x[i, 0, r:r + 2, 1:11] += 0.7
    return x.clamp(0, 1), y


class SmallNet(torch.nn.Module):
    def __init__(self, classes: int = 4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 6 * 6, classes)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(torch.flatten(x, 1))


def train(net: torch.nn.Module, x, y, steps: int = 150):
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    net.train()
    for i in range(steps):
        idx = torch.arange(i * 32, i * 32 + 32) % x.shape[0]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    net.eval()
    return net


@pytest.fixture(scope="session")
def data():
    return bar_images(96, seed=1)


@pytest.fixture(scope="session")
def trained(data):
    torch.manual_seed(0)
    x, y = bar_images(512, seed=2)
    return train(SmallNet(), x, y)


@pytest.fixture(scope="session")
def aegis_binary():
    path = os.environ.get("AEGIS_BINARY") or shutil.which("aegis")
    if not path or not os.path.exists(path):
        pytest.skip("the aegis binary is not built (set AEGIS_BINARY)")
    return path


def run_cli(binary: str, *args: str) -> dict:
    """Runs the CLI with --json and returns its JSON; fails the test with stderr otherwise."""
    env = dict(os.environ, AEGIS_PROGRESS="quiet")
    p = subprocess.run([binary, *args, "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def save_npy(path, t: torch.Tensor):
    np.save(path, t.numpy())
