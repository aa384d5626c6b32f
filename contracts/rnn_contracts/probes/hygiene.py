"""Contracts on the hygiene of a forward call: determinism, gradients, untouched inputs."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import torch

from rnn_contracts.errors import position
from rnn_contracts.probes import shared
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result


def determinism(ctx: Context) -> None:
    """In eval mode two calls on the same input, without reseeding in between, agree exactly
    (dropout applies in training mode only: torch.nn.RNN docs, ``dropout``). Exact equality on
    purpose: the same kernels on the same input leave no room for noise. No h_0 is given, and
    the second call comes right after the first (shapes makes both before any other): a module
    that keeps a state from call to call starts the second from the first one's, whatever it
    keys that state on."""
    main, again = ctx.main, shared.repeat_call(ctx).result
    for name in ("output", "h_n", "c_n"):
        first, second = getattr(main, name), getattr(again, name)
        if first is None:
            continue
        if not torch.equal(first, second):
            diff = (first.double() - second.double()).abs()
            pos = position(int(torch.argmax(diff)), diff.shape)
            raise ProbeFailure(
                f"two eval-mode calls on the same input disagree: {name}[{', '.join(map(str, pos))}] "
                f"{float(first[pos]):.6g} then {float(second[pos]):.6g}"
            )


_CUDNN_LOCK = threading.Lock()
_cudnn_users = 0  # gradient_kernels blocks open now, in any thread
_cudnn_before = True


@contextlib.contextmanager
def gradient_kernels(device: torch.device) -> Iterator[None]:
    """cuDNN off for the block on CUDA (``torch.backends.cudnn.enabled``, restored after), nothing
    elsewhere. cuDNN's RNN backward needs a training-mode forward ("cudnn RNN backward can only
    be called in training mode", aten/src/ATen/native/cudnn/RNN.cpp: the eval-mode forward keeps
    no workspace), and verify_rnn runs the module in eval mode; torch's native kernels compute
    the same function and differentiate it in either mode. Seen on an H200, torch 2.11, cuDNN
    9.19: without this every torch layer failed differentiability on CUDA.

    ``torch.backends.cudnn.enabled`` is one flag for the process: blocks that overlap in threads
    share one off period (the first saves the flag, the last puts it back), and while it lasts
    every thread runs without cuDNN. A probe abandoned by its timeout keeps it off until its
    module returns."""
    if device.type != "cuda":
        yield
        return
    global _cudnn_users, _cudnn_before
    with _CUDNN_LOCK:  # the flag is the process's: the first to enter saves it, the last restores
        if _cudnn_users == 0:
            _cudnn_before = torch.backends.cudnn.enabled
            torch.backends.cudnn.enabled = False
        _cudnn_users += 1
    try:
        yield
    finally:
        with _CUDNN_LOCK:
            _cudnn_users -= 1
            if _cudnn_users == 0:
                torch.backends.cudnn.enabled = _cudnn_before


def differentiability(ctx: Context) -> None:
    """Output and states require grad when parameters do; gradients reach every parameter that
    requires grad; the gradient flows back through time, from the forward direction's last output
    to the first input step (checked for a frozen module too, or a plain callable: the input
    requires grad, and the report's note says no parameter was followed), and, for a module
    given states, from each direction's last step to every layer's h_0 (and c_0) of that
    direction, wherever that state's value changes the result: the call starts from the states
    call's random initial state, as leaves that require grad (torch's layers differentiate with
    respect to h_0 and c_0), so an LSTM that detaches its cell state at each step, while its
    hidden state still carries x[0]'s gradient, fails. A parameter that only the call without
    h_0 reads (a learned default state) is looked for there too; a forward that writes into the
    h_0 it is given (inputs_untouched's) is followed without one. Not seen: a state detached only
    where it is carried on while the other state carries its gradient (an LSTM's h detached after
    each step, c intact), which only a comparison of gradients with torch's layer could tell.
    Uses torch.autograd.grad, so no ``.grad`` is touched. On CUDA the forwards and backwards of
    this contract run with cuDNN off (:func:`gradient_kernels`).

    Unidirectional, one backward pass serves both: the loss is the last step's output and the
    top layer's final states, all at the last step, so its gradient reaches x[0] only through
    time (every parameter of a torch layer shapes them). Bidirectional, the backward direction's
    final state is the one at step 0, which sees x[0] directly: the gradient through time is
    taken apart, per direction, from the forward direction's last output (to x[0] and the
    forward stacks' initial states) and from the backward direction's, output[0] (to x[-1] and
    the backward stacks'; not for relu, whose dead zone may block it correctly). Once
    batch_independence held, one call and one backward pass still serve all three (a backward
    pass of a large LSTM costs as much as its forward's weight reordering, ~0.45 s on
    LSTM(64, 1024, num_layers=4, bidirectional=True)): the main probe input four times along the
    batch, the first copy's every output and state for the parameters, the second copy's forward
    direction's last output, a third copy in no loss at all, and the fourth copy's backward
    direction's output[0]. The third copy's input gradient must be exactly zero, or the
    sequences are tied in the backward pass (values apart, gradients not) and the passes are
    taken on the main probe input alone."""
    with gradient_kernels(ctx.device):
        _differentiability(ctx)


def _differentiability(ctx: Context) -> None:
    spec = ctx.spec
    params: list[tuple[str, torch.Tensor]] = []
    if isinstance(ctx.module, torch.nn.Module):  # verify_rnn accepts any callable
        params = [(n, p) for n, p in ctx.module.named_parameters() if p.requires_grad]
        if not params:  # frozen (a pretrained encoder): the gradient through time still counts
            ctx.cached("notes", dict)["differentiability"] = NO_PARAMETERS.format(
                why="no parameter requires grad")
    else:
        ctx.cached("notes", dict)["differentiability"] = NO_PARAMETERS.format(
            why=f"{type(ctx.module).__name__} is not a torch.nn.Module")
    tensors = [p for _, p in params]
    # a forward that writes into the h_0 it is given (inputs_untouched's finding, from the states
    # call) breaks autograd's record of it, with one error or another: followed without h_0
    given = spec.gives_hx and shared.states_written(ctx) is None
    found = _gradients_of_copies(ctx, tensors, given) if spec.bidirectional and ctx.merged() else None
    got, forward, reached, gx, states, gx_back = found or _gradients(ctx, tensors, given_states=given)
    # relu's dead zone: a correct nonlinearity="relu" layer whose units are inactive outputs
    # exact zeros and passes exact-zero gradients (torch's own nn.RNN(4, 2,
    # nonlinearity="relu") did so on the probe inputs for some seeds). Where the result shows
    # such zeros, an all-zero gradient is no evidence of a detached path; None (not in the
    # graph at all) still is. tanh / sigmoid never give exact zeros by chance.
    dead_zone = any(bool((t == 0).any()) for t in (got.output, got.h_n) if t is not None)
    def unreached(found: list[bool | None]) -> list[str]:
        return [n for (n, _), nonzero in zip(params, found) if nonzero is None or (not dead_zone and not nonzero)]

    missing = unreached(reached)
    if missing and states:  # read only without h_0 (a learned default state)? that call says
        without = set(unreached(_gradients(ctx, tensors, given_states=False)[2]))
        missing = [name for name in missing if name in without]
    if missing:
        raise ProbeFailure(f"no gradient reaches {', '.join(missing)}")
    through_time = gx is not None and bool(gx[0].abs().sum() > 0)
    # Zero by value is explained when every sequence has a step whose forward output is exactly
    # zero on every unit (relu inactive everywhere: no gradient passes that step).
    dead_step = bool((forward.detach() == 0).all(dim=2).any(dim=0).all())
    if not (through_time or (gx is not None and dead_step)):
        verdict = _relu_retry(ctx) if gx is not None else "cut"
        if verdict == "not observable":
            raise NotApplicable(
                "its other checks held; not observable: no gradient from output[-1] reaches x[0] on "
                f"any of {len(_RETRY_SCALES) * 2 + 1} inputs tried, and every run has units exactly 0 "
                "(relu's dead zone, e.g. a lower layer inactive on every input): nothing to follow")
        if verdict != "flows":  # another input showing the gradient through time: it holds
            raise ProbeFailure(
                "no gradient flows back through time: d output[-1, :, :H_out] / d x[0] is zero "
                "(is the state detached between steps?)"
            )
    # The backward direction through time: from its last output, output[0], to the step it reads
    # first, x[-1]. Not for relu, whose dead zone may block it correctly (the forward direction's
    # retries above say when; the backward direction has none).
    if gx_back is not None and not shared.is_relu(ctx) and not bool(gx_back[-1].abs().sum() > 0):
        raise ProbeFailure(
            "no gradient flows back through time in the backward direction: d output[0, :, H_out:] / "
            "d x[-1] is zero (is the state detached between steps?)")
    # relu's dead zone only: a half-precision tanh or sigmoid can round a value to exactly 0
    # (an LSTM that detached h at each step passed in bfloat16 on that excuse)
    _states_reached(ctx, states, dead_zone and shared.is_relu(ctx))


def _states_reached(ctx: Context, states: list[tuple[str, torch.Tensor | None]], dead_zone: bool) -> None:
    """The gradient from each direction's last step reaches each layer's initial state of that
    direction: ``states`` holds (name, d loss / d state) for h_0 (and c_0). Zero is no evidence
    in relu's dead zone; not in the graph at all always is, where the state's value is used (a
    module that ignores h_0 altogether fails initial_state, not this)."""
    spec = ctx.spec
    for name, grad in states:
        for k in range(spec.num_layers * spec.num_directions):  # layer by layer, forward first
            if grad is not None and (dead_zone or bool(grad[k].abs().sum() > 0)):
                continue
            if not _state_value_used(ctx, name[0], k):
                continue
            layer, direction = divmod(k, spec.num_directions)
            where = f"layer {layer}" + ((", backward direction" if direction else ", forward direction")
                                        if spec.bidirectional else "")
            state = "cell state" if name == "c_0" else "hidden state"
            raise ProbeFailure(
                f"no gradient from the last step reaches {name}[{k}] ({where}): "
                f"{'it is not in the graph' if grad is None else 'it is zero'} "
                f"(is the {state} detached between steps?)")


def _state_value_used(ctx: Context, which: str, k: int) -> bool:
    """Whether ``which``_0 of stack ``k`` changes the result by value: initial_state's calls
    (rnn_contracts.probes.shared; made here where it did not run), the stack copies that hold a
    state in stack k alone against the same copies from zero states, the same call shape, any
    difference counting. True where those calls cannot be made (the gradient's verdict stands)."""
    given, copies = shared.states_input(ctx), shared.tries(ctx)
    start = given.groups[f"stacks {which}"].start + copies * k
    cut = slice(start, start + copies)
    try:
        try:
            stacks = shared.stacks_call(ctx)
        except ProbeFailure:  # a non-contiguous h_0 refused (cuDNN): the same states, contiguous
            stacks = shared.stacks_call(ctx, strided=False)
        states = shared.states_call(ctx)
    except ProbeFailure:
        return True
    return any(a is not None and ctx.shows_change(a[:, cut], b[:, cut])
               for a, b in ((stacks.output, states.output), (stacks.h_n, states.h_n), (stacks.c_n, states.c_n)))


#: (the result, the forward direction's output, whether each parameter is reached, d loss / d x,
#: (name, d loss / d state) for each initial state given: h_0, c_0; bidirectional, each stack
#: from its own direction's loss, and d output[0, :, H_out:] / d x: the backward direction's).
Gradients = tuple[Result, torch.Tensor, list[bool | None], torch.Tensor | None,
                  list[tuple[str, torch.Tensor | None]], torch.Tensor | None]
#: differentiability's note for a module without a parameter to follow: what it checked instead.
NO_PARAMETERS = "{why}: only the gradient through time was followed, from output[-1] back to x[0]"


def _state_leaves(ctx: Context, copies: int = 1, given: bool = True) -> list[tuple[str, torch.Tensor]]:
    """The states call's random h_0 (and c_0) of the main probe input, ``copies`` times along the
    batch, as leaves that require grad, by name, for a module given states (``given``); none
    otherwise. Random, not zero: a parameter that scales h_0 gets a gradient only from a nonzero
    one (zero leaves flagged ``hx * gain``'s gain as unreached, a review)."""
    if not (given and ctx.spec.gives_hx):
        return []
    random = shared.states_input(ctx).group_hx("random")
    values = random if isinstance(random, tuple) else (random,)
    names = ("h_0", "c_0") if ctx.spec.has_cell else ("h_0",)
    return [(name, torch.cat([v] * copies, dim=1).clone().requires_grad_(True)) for name, v in zip(names, values)]


def _requiring_grad(ctx: Context, xs: torch.Tensor, label: str, *, params: bool = True,
                    states: list[tuple[str, torch.Tensor]] | None = None) -> Result:
    """The module on ``xs`` (seq-first, a leaf that requires grad) with grad enabled, from
    ``states`` (leaves, :func:`_state_leaves`) when given; its output and states must require grad
    (they depend on the input, and on the parameters that require grad: ``params`` says whether
    any does)."""
    hx = ctx.as_hx(states[0][1], states[1][1] if len(states) > 1 else None) if states else None
    if states:
        label += ", from a random h_0 that requires grad"
    got = ctx.split(ctx.call(ctx.feed(xs), hx, label=label))
    for name in ("output", "h_n", "c_n"):
        value = getattr(got, name)
        if value is not None and not value.requires_grad:
            whose = "the parameters do" if params else "the input does"
            raise ProbeFailure(f"{name} does not require grad although {whose} (detached?)")
    return got


def _gradients(ctx: Context, params: list[torch.Tensor], *, given_states: bool = True) -> Gradients:
    """On the main probe input, from random initial states that require grad where the module
    is given states (``given_states``): its result, the forward direction's output, whether a
    gradient reaches each parameter (:func:`_gradients_reached`), d output[-1, :, :H_out] / d x
    and the initial states' gradients."""
    spec = ctx.spec
    x = ctx.x.clone().requires_grad_(True)
    leaves = _state_leaves(ctx, given=given_states)
    with torch.enable_grad():
        got = _requiring_grad(ctx, x, "the main probe input with grad enabled", params=bool(params), states=leaves)
        finals = [t for t in (got.h_n, got.c_n) if t is not None]
        forward = got.output[:, :, : spec.h_out]
        inputs = [x, *(t for _, t in leaves)]
        if spec.bidirectional:
            reached: list[bool | None] = []
            if params:
                loss = got.output.sum() + sum(t.sum() for t in finals)
                reached, _ = _gradients_reached(loss, params, [])
            gx, *grads = torch.autograd.grad(forward[-1].sum(), inputs, allow_unused=True, retain_graph=True)
            gxb, *grads_b = torch.autograd.grad(got.output[0, :, spec.h_out:].sum(), inputs, allow_unused=True)
            return got, forward, reached, gx, _by_direction(ctx, leaves, grads, grads_b), gxb
        # the last step's output and the top layer's final states
        loss = got.output[-1].sum() + sum(t[-1].sum() for t in finals)
        reached, (gx, *grads) = _gradients_reached(loss, params, inputs)
    return got, forward, reached, gx, [(name, g) for (name, _), g in zip(leaves, grads)], None


def _gradients_of_copies(ctx: Context, params: list[torch.Tensor], given: bool = True) -> Gradients | None:
    """What :func:`_gradients` finds for a bidirectional module, from one call on four copies of
    the main probe input along the batch (and of its initial states, ``given``) and one backward
    pass (see differentiability); None when the third copy's input gets a gradient that is not
    exactly zero."""
    spec, batch = ctx.spec, ctx.batch
    xs = torch.cat([ctx.x] * 4, dim=1).requires_grad_(True)
    first, second, third, fourth = (slice(i * batch, (i + 1) * batch) for i in range(4))
    leaves = _state_leaves(ctx, 4, given)
    with torch.enable_grad():
        whole = _requiring_grad(ctx, xs, "the main probe input four times along the batch, with grad enabled",
                                params=bool(params), states=leaves)
        got, forward = whole.columns(first), whole.columns(second).output[:, :, : spec.h_out]
        backward = whole.columns(fourth).output[:, :, spec.h_out:]
        finals = [t for t in (got.h_n, got.c_n) if t is not None]
        loss = got.output.sum() + sum(t.sum() for t in finals) + forward[-1].sum() + backward[0].sum()
        reached, (gxs, *grads) = _gradients_reached(loss, params, [xs, *(t for _, t in leaves)])
    if gxs is None or bool((gxs[:, third] != 0).any()):
        return None
    # the second copy's states: only forward[-1] of that copy is in the loss; the fourth's:
    # only the backward direction's output[0]
    def cut(copy: slice) -> list[torch.Tensor | None]:
        return [None if g is None else g[:, copy] for g in grads]

    return got, forward, reached, gxs[:, second], _by_direction(ctx, leaves, cut(second), cut(fourth)), gxs[:, fourth]


def _by_direction(ctx: Context, leaves: list[tuple[str, torch.Tensor]], forward: list[torch.Tensor | None],
                  backward: list[torch.Tensor | None]) -> list[tuple[str, torch.Tensor | None]]:
    """Each initial state's gradient, every layer's forward-direction stack from the forward
    direction's loss and its backward-direction stack from the backward direction's (None where
    either reached none)."""
    found: list[tuple[str, torch.Tensor | None]] = []
    for (name, _), f, b in zip(leaves, forward, backward):
        if f is None or b is None:
            found.append((name, None))
            continue
        both = f.clone()
        both[1::2] = b[1::2]  # stacks are ordered layer by layer, forward direction first
        found.append((name, both))
    return found


def _gradients_reached(loss: torch.Tensor, params: list[torch.Tensor],
                       inputs: list[torch.Tensor]) -> tuple[list[bool | None], list[torch.Tensor | None]]:
    """For each parameter: None when no gradient reaches it (not in the graph), else whether its
    gradient is nonzero anywhere; and ``loss``'s gradient with respect to each of ``inputs`` (None
    where none reaches it; no inputs: the graph is kept for another pass). Each parameter's gradient
    is read as it is computed, by a hook that hands autograd a zero of the same shape without
    storage in its place (a stride-0 expand): the gradients are never all held at once, which
    for a large LSTM was the size of every parameter again (338 MB)."""
    seen: dict[int, bool] = {}

    def reader(i: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def read(grad: torch.Tensor) -> torch.Tensor:
            seen[i] = bool(grad.abs().sum() > 0)
            if grad.layout != torch.strided:  # a sparse gradient is small anyway
                return grad
            return torch.zeros((), dtype=grad.dtype, device=grad.device).expand(grad.shape)
        return read

    handles = [p.register_hook(reader(i)) for i, p in enumerate(params)]
    try:
        grads = torch.autograd.grad(loss, params + inputs, allow_unused=True, retain_graph=not inputs)
    finally:
        for handle in handles:
            handle.remove()
    return [seen.get(i) for i in range(len(params))], list(grads[len(params):])


#: Input magnitudes tried (each sign pattern and its negation) before a relu layer's missing
#: gradient through time is called not observable: a multi-layer relu RNN whose lower layer is
#: inactive on the probe input (seed 548 nn.RNN(5, 1, 3, relu)) passes nothing back, correctly.
_RETRY_SCALES = (1.0, 10.0, 100.0)


def _relu_retry(ctx: Context) -> str:
    """For a relu RNN whose main probe input passed no gradient from output[-1] to x[0]:
    "flows" when another input does; "cut" when on some input output[-1] moves with a small
    change of x[0] while no gradient reaches it (a detached state), when no run shows inactive
    units, or when the module is not a relu RNN (tanh / sigmoid never give exact zeros by chance);
    "not observable" otherwise: no input passes a gradient, small changes of x[0] leave output[-1]
    as it is, and inactive units (exact zeros, a lower layer's h_n included) are there."""
    spec = ctx.spec
    if not shared.is_relu(ctx):
        return "cut"
    h = spec.h_out
    dead = False  # exact zeros seen: inactive units somewhere (a lower layer's h_n included)
    cut = False  # output[-1] moved with a small change of x[0] while no gradient reached it
    for scale in _RETRY_SCALES:
        pattern = ctx.randn(*ctx.x.shape).sign() * scale
        for xs in (pattern, -pattern):
            x = xs.clone().requires_grad_(True)
            label = f"an input of magnitude {scale:g}"
            with torch.enable_grad():
                got = ctx.split(ctx.call(ctx.feed(x), label=f"{label} with grad enabled"))
                zeros = any(bool((t == 0).any()) for t in (got.output, got.h_n) if t is not None)
                (gx,) = torch.autograd.grad(got.output[-1, :, :h].sum(), [x], allow_unused=True)
            if gx is None:
                return "cut"  # x[0] is not in the graph of output[-1] at all
            if bool(gx[0].abs().sum() > 0):
                return "flows"
            # A cut graph: output[-1] moves with a small change of x[0] (1/16 of it, exact in
            # half precision) while no gradient reaches x[0]. In relu's dead zone it stays put:
            # a large change can wake an inactive unit, a small one does not.
            nudged = xs.clone()
            nudged[0] = nudged[0] * (1 + 2**-4)
            other = ctx.split(ctx.call(ctx.feed(nudged), label=f"{label}, its first step nudged"))
            cut = cut or not torch.equal(other.output[-1, :, :h], got.output[-1, :, :h].detach())
            dead = dead or zeros
    return "not observable" if dead and not cut else "cut"


#: inputs_untouched's advice where the module changed a buffer's values: the one change a spec
#: may declare (running statistics, observers).
DECLARE_BUFFERS = "a module whose buffers change by design declares RNNSpec(updates_buffers=True)"


def inputs_untouched(ctx: Context) -> None:
    """Forward does not modify x, h_0 or c_0 in place (values and version counters), nor the
    module's own parameters and buffers (buffers only when the spec does not declare
    ``updates_buffers``): x and the module over the repeat call, h_0 and c_0 over the states
    call (both in rnn_contracts.probes.shared). verify_rnn adds what every probe changed on the
    module (trace.py)."""
    written = shared.repeat_call(ctx).written
    if written is None and ctx.spec.gives_hx:
        written = shared.states_written(ctx)
    if written is not None:
        advice = f" ({DECLARE_BUFFERS})" if written.startswith("buffer ") else ""
        raise ProbeFailure(f"forward modified {written} in place{advice}")
