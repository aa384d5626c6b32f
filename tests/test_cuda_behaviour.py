"""What the first GPU run (one H200, torch 2.11+cu130, cuDNN 9.19) showed, pinned on the CPU side.

CI has no GPU, so each CUDA behaviour that broke a verdict there is reproduced here by the rule
torch follows, and the kit's answer to it is tested against that rule:

* cuDNN's RNN backward runs only after a training-mode forward; verify_rnn runs modules in eval
  mode, so differentiability takes its gradients with cuDNN off (``gradient_kernels``);
* cuDNN's default TF32 put the seed's output 1.1e-4 from its golden: the seed's run turns TF32 off;
* torch cannot flatten bfloat16 weights for cuDNN (``cudnn_flattens``; the plugin's side is
  tests/test_plugin_gpu.py).
"""
from __future__ import annotations

from typing import Any

import pytest
import torch

import rnn_contracts
from rnn_contracts import precision, seed
from rnn_contracts.probes import hygiene
from rnn_contracts.support import cudnn_flattens

#: torch's text (aten/src/ATen/native/cudnn/RNN.cpp, _cudnn_rnn_backward).
CUDNN_EVAL_BACKWARD = "cudnn RNN backward can only be called in training mode"


class _EvalBackwardFails(torch.autograd.Function):
    """Identity whose backward raises torch's cuDNN error."""

    @staticmethod
    def forward(ctx: Any, value: torch.Tensor) -> torch.Tensor:
        return value.view_as(value)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(CUDNN_EVAL_BACKWARD)


class CudnnLikeGRU(torch.nn.Module):
    """A GRU that differentiates as cuDNN does: a forward run in eval mode with cuDNN enabled
    cannot be differentiated."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(4, 3)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_n = self.rnn(x, hx)
        if torch.backends.cudnn.enabled and not self.training:
            out, h_n = _EvalBackwardFails.apply(out), _EvalBackwardFails.apply(h_n)
        return out, h_n


def test_gradient_kernels_turn_cudnn_off_on_cuda_only_and_restore_it() -> None:
    assert torch.backends.cudnn.enabled
    with hygiene.gradient_kernels(torch.device("cuda", 0)):
        assert not torch.backends.cudnn.enabled
    assert torch.backends.cudnn.enabled
    with pytest.raises(KeyError), hygiene.gradient_kernels(torch.device("cuda", 0)):
        raise KeyError("restored on an exception too")
    assert torch.backends.cudnn.enabled
    with hygiene.gradient_kernels(torch.device("cpu")):
        assert torch.backends.cudnn.enabled


def test_differentiability_holds_for_a_module_that_differentiates_as_cudnn_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control first: on the CPU path (cuDNN left as it is) the cuDNN-like module
    breaks the probe with torch's message, which is what every torch layer did on the H200.
    With the CUDA path's kernels (cuDNN off), the contract holds."""
    module, spec = CudnnLikeGRU(), rnn_contracts.RNNSpec(mode="GRU", input_size=4, hidden_size=3)
    with pytest.raises(rnn_contracts.ContractViolation, match=CUDNN_EVAL_BACKWARD):
        rnn_contracts.verify_rnn(module, spec, contracts=["differentiability"])
    real = hygiene.gradient_kernels
    monkeypatch.setattr(hygiene, "gradient_kernels", lambda device: real(torch.device("cuda")))
    report = rnn_contracts.verify_rnn(module, spec, contracts=["differentiability"])
    assert report.status_of("differentiability") == "passed"
    assert torch.backends.cudnn.enabled


def test_the_seed_runs_with_tf32_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """TF32 is on by torch's default (cudnn.allow_tf32), so the check can fail on the CPU too.
    Each of the seed's forwards sees TF32 off (torch's default leaves cuDNN's TF32 on, which is
    off by 1.1e-4 on the golden's output[0, 4, 1] on an H200), and the flags are back after."""
    before = precision.precision_flags()
    seen: list[bool] = []
    real = seed.check_forward

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(precision.tf32_active())
        return real(*args, **kwargs)

    monkeypatch.setattr(seed, "check_forward", recording)
    checks, _ = seed.seed_checks("cpu")
    assert [c.status for c in checks] == ["passed"] * 5
    assert seen == [False, False, False]
    assert precision.precision_flags() == before


@pytest.mark.parametrize(("dtype", "flattens"), [
    (torch.float16, True), (torch.float32, True), (torch.float64, True), (torch.bfloat16, False),
])
def test_cudnn_flattens_follows_torchs_own_list(dtype: torch.dtype, flattens: bool) -> None:
    assert cudnn_flattens(dtype) is flattens


def test_cudnn_flattens_without_torchs_list_falls_back_to_the_same_three(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch without ``CUDNN_TENSOR_DTYPES`` gets the list torch 2.13 has."""
    import types

    monkeypatch.setattr(torch.backends, "cudnn", types.SimpleNamespace())  # no list at all
    assert [cudnn_flattens(d) for d in (torch.float16, torch.float32, torch.float64, torch.bfloat16)] == [
        True, True, True, False]


def test_gradient_kernels_overlapping_in_threads_restore_cudnn_once_both_are_done() -> None:
    """A enters, B enters, A leaves, B leaves: cuDNN stays off until B leaves, then is back on
    (saving and restoring per block left it off for good)."""
    import threading

    cuda = torch.device("cuda", 0)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with hygiene.gradient_kernels(cuda):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with hygiene.gradient_kernels(cuda):
            b_in.set()
            a_out.wait(5)
            seen["after A left"] = torch.backends.cudnn.enabled

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"after A left": False}
    assert torch.backends.cudnn.enabled
