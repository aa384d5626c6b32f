#!/usr/bin/env python
"""What a shape check costs per forward call, side by side, and what verify_rnn costs.

Variants (each one call = the module's forward plus that variant's check of the input and of
both outputs, with the dims bound across them: seq, batch, hidden, layers):

    bare                 module(x)
    asserts              plain ``assert t.shape == ...`` before and after
    jaxtyping+typeguard  ``with jaxtyped("context"): typeguard.check_type(t, Float[Tensor, "..."])``
    jaxtyping+beartype   the same with ``beartype.door.die_if_unbearable``
    check_shapes         GPflow's ``@check_shapes(...)`` on a function calling the module
                         (optional: skipped with one line when not installed)
    checked              this kit's ``contracts.checked(module)``, in steady state

Cases: the seed (torch.nn.RNN(4, 2) under torch.manual_seed(0), input (5, 3, 4) seq-first) and
a larger nn.RNN(64, 256) on (64, 32, 64) (seq 64, batch 32, input_size 64); the default run adds
GRU(4, 2) and LSTM(4, 2) on the seed's input (not gated; the LSTM's (h, c) result takes the
wrapper's general path). One thread (torch.set_num_threads(1)), autograd on, as in a training
loop's forward.

Method: the variants of a case run in rounds, round-robin with the order rotated each round, so
drift on a shared machine hits all alike; a round times a block of calls per variant; per variant
the median over rounds of the per-call time is reported, with the ratio to bare's median
("ratio") and the median over rounds of the per-round ratio to bare ("paired"). The clock is the
process's CPU time (time.process_time) by default: on a shared machine wall time mostly measures
the other jobs (a 40 us forward reads 100 us and more); ``--clock wall`` for a quiet machine.
Before timing, each checker is shown to reject a module whose h_n has the wrong batch size
(negative control), so no row measures a check that checks nothing.

verify_rnn(module) is timed (median of several runs after a warm-up one, printed as "cold") over
the median bare forward of the same module on its benchmark input: "forward-equivalents".

Gates (exit 1, except in --quick): checked / bare > 1.05 on the seed module; verify_rnn > 60
forward-equivalents on the larger module.

    python benchmarks/bench_overhead.py            # about 15 s of CPU (30 s wall on a busy box)
    python benchmarks/bench_overhead.py --quick    # about 1 s after imports; gates not enforced
    python benchmarks/bench_overhead.py --json out.json
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

import beartype  # noqa: E402
import jaxtyping  # noqa: E402
import typeguard  # noqa: E402
from beartype.door import die_if_unbearable  # noqa: E402
from jaxtyping import Float, jaxtyped  # noqa: E402
from torch import Tensor  # noqa: E402

import contracts  # noqa: E402
import contracts.wrapper  # noqa: E402

CHECK_SHAPES_MISSING = ""
try:
    from check_shapes import check_shapes as _check_shapes
    import check_shapes as _check_shapes_pkg

    CHECK_SHAPES_VERSION: str | None = getattr(_check_shapes_pkg, "__version__", "installed")
except Exception as exc:  # absent or broken: an optional peer
    _check_shapes = None
    CHECK_SHAPES_VERSION = None
    CHECK_SHAPES_MISSING = f"{type(exc).__name__}: {exc}"

#: The team's notes: torch 2.13 CPU, one thread, the seed module, bare forward about 81 us.
REFERENCE_RATIO = {
    "bare": 1.00,
    "asserts": 1.03,
    "jaxtyping+typeguard": 1.70,
    "jaxtyping+beartype": 1.66,
    "check_shapes": 2.14,
    "checked": 1.05,  # a bound, not a measurement
}
WRAPPER_MAX_RATIO = 1.05
VERIFY_MAX_FORWARDS = 60.0

Variant = Callable[[Tensor], Any]


# ---------------------------------------------------------------------------------------------
# Variants


def _layout(module: torch.nn.RNNBase) -> tuple[int, int, int]:
    """(layers, out features, h_n features) of a torch recurrent layer (seq-first, batched)."""
    dirs = 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0) or 0
    h_feat = proj or module.hidden_size
    return module.num_layers * dirs, dirs * h_feat, h_feat


def make_variants(module: torch.nn.RNNBase) -> dict[str, Variant]:
    """The checked-call variants for ``module``: each returns the module's result."""
    is_lstm = module.mode == "LSTM"
    layers, out_feat, h_feat = _layout(module)
    in_feat, cell = module.input_size, module.hidden_size

    def bare(x: Tensor) -> Any:
        return module(x)

    if is_lstm:
        def asserts(x: Tensor) -> Any:
            assert x.dim() == 3 and x.shape[2] == in_feat, x.shape
            seq, batch = x.shape[0], x.shape[1]
            result = module(x)
            out, (h, c) = result
            assert out.shape == (seq, batch, out_feat), out.shape
            assert h.shape == (layers, batch, h_feat), h.shape
            assert c.shape == (layers, batch, cell), c.shape
            return result
    else:
        def asserts(x: Tensor) -> Any:
            assert x.dim() == 3 and x.shape[2] == in_feat, x.shape
            seq, batch = x.shape[0], x.shape[1]
            result = module(x)
            out, h = result
            assert out.shape == (seq, batch, out_feat), out.shape
            assert h.shape == (layers, batch, h_feat), h.shape
            return result

    x_t = Float[Tensor, "seq batch dim"]
    out_t = Float[Tensor, "seq batch out"]
    h_t = Float[Tensor, "layers batch hidden"]
    c_t = Float[Tensor, "layers batch cell"]

    def jaxtyping_variant(check: Callable[[Any, Any], Any]) -> Variant:
        if is_lstm:
            def run(x: Tensor) -> Any:
                with jaxtyped("context"):
                    check(x, x_t)
                    result = module(x)
                    out, (h, c) = result
                    check(out, out_t)
                    check(h, h_t)
                    check(c, c_t)
                return result
        else:
            def run(x: Tensor) -> Any:
                with jaxtyped("context"):
                    check(x, x_t)
                    result = module(x)
                    out, h = result
                    check(out, out_t)
                    check(h, h_t)
                return result
        return run

    variants: dict[str, Variant] = {
        "bare": bare,
        "asserts": asserts,
        "jaxtyping+typeguard": jaxtyping_variant(typeguard.check_type),
        "jaxtyping+beartype": jaxtyping_variant(die_if_unbearable),
    }
    if _check_shapes is not None:
        state_specs = (
            ("return[1][0]: [layers, batch, hidden]", "return[1][1]: [layers, batch, cell]")
            if is_lstm else ("return[1]: [layers, batch, hidden]",)
        )

        @_check_shapes("x: [seq, batch, dim]", "return[0]: [seq, batch, out]", *state_specs)
        def check_shapes_variant(x: Tensor) -> Any:
            return module(x)

        variants["check_shapes"] = check_shapes_variant
    variants["checked"] = contracts.checked(module)
    return variants


def _liar(module: torch.nn.RNNBase) -> torch.nn.RNNBase:
    """A copy of ``module`` whose h_n drops one batch entry: every checker must reject it."""
    base = type(module)

    def forward(self: Any, x: Any, hx: Any = None) -> Any:
        out, state = base.forward(self, x, hx)
        if isinstance(state, tuple):
            return out, (state[0][:, :-1], state[1])
        return out, state[:, :-1]

    liar = copy.deepcopy(module)
    liar.__class__ = type(f"Liar{base.__name__}", (base,), {"forward": forward})
    return liar


def negative_controls(module: torch.nn.RNNBase, x: Tensor) -> list[str]:
    """The variants (bare excepted) that do NOT reject a wrong h_n, or fail on a right one."""
    broken = []
    liar = _liar(module)
    good, bad = make_variants(module), make_variants(liar)
    for name, fn in bad.items():
        if name == "bare":
            continue
        try:
            good[name](x)
        except Exception as exc:
            broken.append(f"{name} rejects a correct call: {type(exc).__name__}: {exc}")
            continue
        try:
            fn(x)
        except Exception:
            continue
        broken.append(f"{name} accepts an h_n with the wrong batch size")
    return broken


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass
class Case:
    name: str
    module: torch.nn.RNNBase
    x: Tensor
    rounds: int
    block_s: float  # target duration of one bare block
    gated: bool = False
    verify_runs: int = 5
    results: dict[str, Any] = field(default_factory=dict)


#: The clock of every measurement; main() may switch it to wall time (--clock wall).
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
clock: Callable[[], float] = CLOCKS["cpu"]


def _block(fn: Variant, x: Tensor, n: int) -> float:
    start = clock()
    for _ in range(n):
        fn(x)
    return (clock() - start) / n


def bench_case(case: Case, warmup: int) -> dict[str, Any]:
    variants = make_variants(case.module)
    x = case.x
    for fn in variants.values():
        for _ in range(warmup):
            fn(x)
    # Calls per block: about block_s of bare forwards (at least one call).
    probe = statistics.median(_block(variants["bare"], x, 3) for _ in range(3))
    n = max(1, round(case.block_s / probe))
    names = list(variants)
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for r in range(case.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            per_round[name].append(_block(variants[name], x, n))
    bare = statistics.median(per_round["bare"])
    rows = {}
    for name in names:
        times = per_round[name]
        med = statistics.median(times)
        paired = statistics.median(t / b for t, b in zip(times, per_round["bare"]))
        rows[name] = {
            "median_us": med * 1e6,
            "overhead_us": (med - bare) * 1e6,
            "ratio": med / bare,
            "paired_ratio": paired,
            "reference_ratio": REFERENCE_RATIO.get(name),
        }
    return {"calls_per_block": n, "rounds": case.rounds, "variants": rows}


def first_call_us(case: Case) -> float:
    """The wrapper's first call on a fresh module: the full check, before any verdict is cached."""
    wrapped = contracts.checked(copy.deepcopy(case.module))
    start = clock()
    wrapped(case.x)
    return (clock() - start) * 1e6


def bench_verify(case: Case, bare_s: float) -> dict[str, Any]:
    start = clock()
    contracts.verify_rnn(case.module)  # raises if the module breaks a contract
    cold = clock() - start
    times = []
    for _ in range(case.verify_runs):
        start = clock()
        contracts.verify_rnn(case.module)
        times.append(clock() - start)
    med = statistics.median(times)
    return {
        "cold_ms": cold * 1e3,
        "median_ms": med * 1e3,
        "runs": len(times),
        "forward_equivalents": med / bare_s,
    }


# ---------------------------------------------------------------------------------------------
# Main


def build_cases(quick: bool) -> list[Case]:
    torch.manual_seed(0)
    seed = torch.nn.RNN(4, 2)
    torch.manual_seed(0)
    seed_x = torch.randn(5, 3, 4)
    torch.manual_seed(1)
    large = torch.nn.RNN(64, 256)
    large_x = torch.randn(64, 32, 64)
    torch.manual_seed(0)
    gru, lstm = torch.nn.GRU(4, 2), torch.nn.LSTM(4, 2)
    if quick:
        return [
            Case("seed RNN(4, 2), x (5, 3, 4)", seed, seed_x, 3, 0.001, gated=True, verify_runs=1),
            Case("large RNN(64, 256), x (64, 32, 64)", large, large_x, 2, 0.001, gated=True, verify_runs=1),
            Case("LSTM(4, 2), x (5, 3, 4)", lstm, seed_x, 2, 0.001, verify_runs=1),
        ]
    return [
        Case("seed RNN(4, 2), x (5, 3, 4)", seed, seed_x, 150, 0.005, gated=True),
        Case("large RNN(64, 256), x (64, 32, 64)", large, large_x, 30, 0.015, gated=True),
        Case("GRU(4, 2), x (5, 3, 4)", gru, seed_x, 50, 0.005),
        Case("LSTM(4, 2), x (5, 3, 4)", lstm, seed_x, 50, 0.005),
    ]


def fmt_table(case: Case) -> str:
    res = case.results
    lines = [
        f"{case.name}: {res['rounds']} rounds x {res['calls_per_block']} calls per variant",
        f"  {'variant':<20} {'median us':>11} {'overhead us':>12} {'ratio':>7} {'paired':>7} {'notes':>7}",
    ]
    for name, row in res["variants"].items():
        ref = row["reference_ratio"]
        ref_text = "" if ref is None else (f"<={ref:.2f}" if name == "checked" else f"{ref:.2f}")
        lines.append(
            f"  {name:<20} {row['median_us']:>11.1f} {row['overhead_us']:>+12.1f} "
            f"{row['ratio']:>6.2f}x {row['paired_ratio']:>6.2f}x {ref_text:>7}"
        )
    if "first_call_us" in res:
        lines.append(f"  checked, first call (full check, nothing cached): {res['first_call_us']:.0f} us")
    v = res["verify"]
    lines.append(
        f"  verify_rnn: median {v['median_ms']:.2f} ms over {v['runs']} runs (cold {v['cold_ms']:.2f} ms)"
        f" = {v['forward_equivalents']:.1f} forward-equivalents"
    )
    return "\n".join(lines)


def header(clock_name: str) -> list[str]:
    """The versions and the clock; one more line when check_shapes is skipped."""
    lines = [
        f"torch {torch.__version__}, python {platform.python_version()}, threads {torch.get_num_threads()}, "
        f"jaxtyping {jaxtyping.__version__}, typeguard {_version('typeguard')}, beartype {beartype.__version__}, "
        f"check_shapes {CHECK_SHAPES_VERSION or 'absent'}; clock: {clock_name}"
    ]
    if _check_shapes is None:
        lines.append(f"check_shapes: skipped (not importable: {CHECK_SHAPES_MISSING}); "
                     "pip install check_shapes to add it")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds, for the smoke test; gates not enforced")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu",
        help="cpu (default): the process's CPU time, robust to other jobs on a shared machine; "
             "wall: perf_counter, what a quiet dedicated machine would show",
    )
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]

    torch.set_num_threads(1)
    wall = time.perf_counter()
    print("\n".join(header(args.clock)))

    if contracts.wrapper.DISABLED:
        print(f"{contracts.wrapper.ENV_OFF} is set: contracts.checked() is the identity, nothing to measure")
        return 2
    cases = build_cases(args.quick)
    broken = negative_controls(cases[0].module, cases[0].x)
    lstm = next((c for c in cases if c.module.mode == "LSTM"), None)
    if lstm is not None:
        broken += [f"LSTM: {b}" for b in negative_controls(lstm.module, lstm.x)]
    if broken:
        print("negative controls FAILED:\n  " + "\n  ".join(broken))
        return 1
    print("negative controls: every checker rejects an h_n with the wrong batch size")

    for case in cases:
        case.results = bench_case(case, warmup=3 if args.quick else 20)
        case.results["first_call_us"] = first_call_us(case)
        bare_s = case.results["variants"]["bare"]["median_us"] / 1e6
        case.results["verify"] = bench_verify(case, bare_s)
        print()
        print(fmt_table(case))

    seed, large = cases[0], cases[1]
    wrapper_ratio = seed.results["variants"]["checked"]["ratio"]
    forwards = large.results["verify"]["forward_equivalents"]
    gates = [
        {
            "name": "checked / bare on the seed module",
            "value": wrapper_ratio,
            "limit": WRAPPER_MAX_RATIO,
            "ok": wrapper_ratio <= WRAPPER_MAX_RATIO,
        },
        {
            "name": "verify_rnn in forward-equivalents on the larger module",
            "value": forwards,
            "limit": VERIFY_MAX_FORWARDS,
            "ok": forwards <= VERIFY_MAX_FORWARDS,
        },
    ]
    print()
    for gate in gates:
        verdict = "PASS" if gate["ok"] else "FAIL"
        print(f"{verdict}: {gate['name']} = {gate['value']:.3f} (limit {gate['limit']:g})"
              + ("  [--quick: not enforced]" if args.quick and not gate["ok"] else ""))
    elapsed = time.perf_counter() - wall
    print(f"wall time {elapsed:.1f} s")

    if args.json:
        payload = {
            "environment": {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "threads": torch.get_num_threads(),
                "jaxtyping": jaxtyping.__version__,
                "typeguard": _version("typeguard"),
                "beartype": beartype.__version__,
                "check_shapes": CHECK_SHAPES_VERSION,
            },
            "quick": args.quick,
            "clock": args.clock,
            "cases": [{"name": c.name, **c.results} for c in cases],
            "gates": gates,
            "wall_s": elapsed,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if args.quick:
        return 0
    return 0 if all(g["ok"] for g in gates) else 1


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
