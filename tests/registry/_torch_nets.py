"""Importable PyTorch modules for the flavor tests (a state dict needs its class by name)."""

from __future__ import annotations

from typing import Any

import torch


class TinyNet(torch.nn.Module):  # type: ignore[misc,unused-ignore]
    """Scriptable: a linear layer of configurable width."""

    def __init__(self, n_in: int = 2, n_out: int = 1) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.float())


class DynamicNet(torch.nn.Module):  # type: ignore[misc,unused-ignore]
    """Not scriptable (``forward`` takes ``**kwargs``): only its state dict can be saved."""

    def __init__(self, n_in: int = 2, scale: float = 1.0) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_in, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor, **options: Any) -> torch.Tensor:
        return self.linear(x.float()) * self.scale
