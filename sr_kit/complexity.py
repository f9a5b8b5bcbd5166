"""Model complexity: parameters, Multi-Adds (MACs), per-module tables, latency and peak memory.

Lightweight super-resolution papers report parameters and "Multi-Adds" for a 1280×720 HR
output, i.e. an LR input of ``ceil(720/s) × ceil(1280/s)`` (640×360, 427×240, 320×180 at
×2/×3/×4). This module reproduces that protocol with fvcore's ``FlopCountAnalysis``.

**Units.** fvcore counts one fused multiply-add as one "flop", so every count returned here is
a count of **MACs** (multiply-accumulates), not FLOPs. ``torch.utils.flop_counter.FlopCounterMode``
counts 2 FLOPs per MAC; divide its numbers by 2 to compare.

**What is counted.** Convolutions (incl. strided, grouped, dilated, transposed), ``Linear``,
``matmul``/``@``, ``mm``, ``bmm``, ``baddbmm``, ``einsum`` and ``scaled_dot_product_attention``
(its two matmuls, ``q@kᵀ`` and ``attn@v``). Bias additions are not counted. fvcore's defaults
also charge a small per-element estimate for norm layers (batch/group/layer/instance norm),
nearest/bilinear upsampling, ``adaptive_avg_pool2d`` and ``grid_sample``; those defaults are
kept so that numbers match papers that used fvcore unchanged. Every other elementwise op
(activations, additions, scaling, ``F.normalize``), reductions and ``softmax`` count 0, as is
conventional; :func:`unsupported_ops` lists which ops were seen but not counted.

**Additions over fvcore's defaults** (found by tracing a channel-wise "transposed" attention
block and comparing with ``FlopCounterMode``):

* ``aten::scaled_dot_product_attention`` and ``aten::baddbmm`` are not handled by fvcore at all
  (they would count 0);
* fvcore's ``aten::matmul`` handle multiplies ``numel(a) * b.shape[-1]`` and so undercounts
  when ``b`` carries broadcast batch dimensions that ``a`` lacks (e.g. ``(n, k) @ (B, k, m)``);
* fvcore's ``aten::einsum`` handle returns a float (numpy's optimiser cost / 2).

Importing this module imports neither fvcore nor pandas; both are imported on first use.

Explained in notebooks/02_counting_cost.ipynb.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .device import device_name, resolve_device  # device_name is re-exported

if TYPE_CHECKING:  # imported lazily at run time: fvcore is slow to import, pandas is heavy
    import pandas as pd
    from fvcore.nn import FlopCountAnalysis

__all__ = [
    "Latency",
    "ModelCost",
    "count_macs",
    "count_params",
    "device_name",
    "eval_mode",
    "flop_analysis",
    "latency",
    "lr_size_for_output",
    "macs_at",
    "model_cost",
    "module_table",
    "peak_memory",
    "unsupported_ops",
]

Inputs = Tensor | tuple[Tensor, ...]


# --------------------------------------------------------------------------------------------
# Parameters and input sizes
# --------------------------------------------------------------------------------------------


def count_params(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of parameters (elements) of ``model``.

    Buffers (e.g. BatchNorm running statistics) are never counted. A parameter shared by
    several modules is counted once.

    Args:
        model: The network.
        trainable_only: Count only parameters with ``requires_grad=True`` (the usual paper
            convention); ``False`` counts frozen parameters as well.

    Returns:
        The parameter count.
    """
    # model.parameters() already de-duplicates shared parameters.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def lr_size_for_output(scale: int, out_hw: tuple[int, int] = (720, 1280)) -> tuple[int, int]:
    """LR input size ``(H, W)`` whose ×``scale`` output covers ``out_hw``.

    Uses ceiling division, as the papers do: 720p gives (360, 640), (240, 427) and (180, 320)
    at ×2, ×3 and ×4.

    Args:
        scale: Integer upscaling factor (≥ 1).
        out_hw: HR output size ``(H, W)``; 1280×720 by default.

    Returns:
        ``(ceil(H / scale), ceil(W / scale))``.

    Raises:
        ValueError: If ``scale`` is not a positive integer or ``out_hw`` is not two positive
            integers.
    """
    # bool is an int subclass; scale=True is almost certainly a bug.
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if len(out_hw) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in out_hw
    ):
        raise ValueError(f"out_hw must be two positive integers, got {out_hw!r}")
    h, w = out_hw
    return -(-h // scale), -(-w // scale)


# --------------------------------------------------------------------------------------------
# MACs (fvcore)
# --------------------------------------------------------------------------------------------


def _shape(value: Any) -> list[int]:
    """Shape of a traced JIT value (fvcore hands handles ``torch._C.Value`` objects)."""
    shape = value.type().sizes() if value.isCompleteTensor() else None
    if shape is None:  # only happens for untraced shapes; better loud than silently 0
        raise RuntimeError(f"fvcore handle got a value without a complete shape: {value}")
    return list(shape)


def _matmul_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``matmul``/``mm``: every output element is a length-K dot product.

    ``numel(out) * K`` is exact for all ``torch.matmul`` cases (1-D operands, broadcast batch
    dimensions on either side), unlike fvcore's ``numel(a) * b.shape[-1]``.
    """
    return math.prod(_shape(outputs[0])) * _shape(inputs[0])[-1]


def _baddbmm_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``baddbmm(input, batch1, batch2)``; the scaled addition of ``input`` is free."""
    return math.prod(_shape(outputs[0])) * _shape(inputs[1])[-1]


def _sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``scaled_dot_product_attention``: ``q@kᵀ`` plus ``attn@v``.

    With q ``(..., L, E)``, k ``(..., S, E)``, v ``(..., S, Ev)`` and output ``(..., L, Ev)``
    this is ``batch·L·S·E + batch·L·S·Ev``. Softmax, scaling and masking are not counted; a
    causal mask is not discounted (same convention as ``FlopCounterMode``).
    """
    q, k, v = (_shape(x) for x in inputs[:3])
    rows = math.prod(_shape(outputs[0])[:-1])  # batch · heads · L (GQA: heads of q)
    return rows * k[-2] * (q[-1] + v[-1])


def _einsum_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``einsum``: exact for two-operand contractions, fvcore's estimate otherwise.

    For two operands where every summed index occurs in both (matrix/attention products),
    the MACs are the product of all index sizes, which is what ``torch.einsum`` executes as a
    ``bmm``. Products without summed indices are elementwise and count 0.
    """
    from fvcore.nn.jit_handles import einsum_flop_jit

    equation = inputs[0].toIValue().replace(" ", "")
    operands = [_shape(v) for v in inputs[1].node().inputs()]
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(operands) == 2 and "." not in equation and "->" in equation:
        sizes: dict[str, int] = {}
        for term, shape in zip(terms, operands, strict=True):
            sizes.update(zip(term, shape, strict=True))
        summed = set(sizes) - set(rhs)
        if not summed:
            return 0
        if all(c in terms[0] and c in terms[1] for c in summed):
            return math.prod(sizes.values())
    return round(einsum_flop_jit(inputs, outputs))


# Handles added to / replacing fvcore's defaults (see the module docstring for why).
_EXTRA_HANDLES: dict[str, Callable[[list[Any], list[Any]], int]] = {
    "aten::matmul": _matmul_macs,
    "aten::mm": _matmul_macs,
    "aten::baddbmm": _baddbmm_macs,
    "aten::einsum": _einsum_macs,
    "aten::scaled_dot_product_attention": _sdpa_macs,
}


# -- DLGSANet's dynamic depthwise conv (sr_kit/blocks/dynamic.py) --
def _dynamic_dwconv_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``dynamic_dwconv(x, weight)``: k*k per output element, like a depthwise conv.

    The op is a custom autograd function, which fvcore sees as one ``prim::PythonOp`` (its
    multiply-adds inside would otherwise count 0); weight is (B, G, k, k, H, W).
    """
    k_h, k_w = _shape(inputs[1])[2:4]
    return math.prod(_shape(outputs[0])) * k_h * k_w


_EXTRA_HANDLES["prim::PythonOp.DynamicDWConvFunction"] = _dynamic_dwconv_macs
# -- end DLGSANet --


def _import_fvcore() -> type[FlopCountAnalysis]:
    # fvcore.nn's import chain calls torch.jit.script, which recent torch deprecates loudly.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning
        )
        from fvcore.nn import FlopCountAnalysis

    return FlopCountAnalysis


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode, then restore every submodule's own ``training`` flag.

    Restoring per submodule (rather than ``model.train(old)``) keeps deliberately mixed states
    such as frozen BatchNorm layers inside a training model.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def flop_analysis(model: nn.Module, inputs: Inputs) -> FlopCountAnalysis:
    """A configured, already-evaluated fvcore ``FlopCountAnalysis`` (counts are MACs).

    The model is traced once in eval mode under ``torch.no_grad()``; its training flags are
    restored afterwards. fvcore's warnings about unsupported ops and uncalled modules are
    silenced (use ``.unsupported_ops()`` / ``.uncalled_modules()`` to inspect them), and the
    handles described in the module docstring are added. Useful for ``.by_operator()``.

    Args:
        model: The network.
        inputs: One tensor or a tuple of positional inputs, on the model's device.

    Returns:
        The analysis; its statistics are cached, so later queries do not re-trace.
    """
    analysis = _import_fvcore()(model, inputs)
    analysis.set_op_handle(**_EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with eval_mode(model), torch.no_grad():
        analysis.total()  # trace now, inside eval/no_grad; fvcore caches the result
    return analysis


def count_macs(model: nn.Module, inputs: Inputs) -> int:
    """Multi-Adds (MACs) of one forward pass, as counted by fvcore.

    One fused multiply-add counts as 1 (so FLOPs ≈ 2 × MACs). See the module docstring for
    which ops are counted. The model runs in eval mode under ``torch.no_grad()``; its training
    flags are restored afterwards.

    Args:
        model: The network.
        inputs: One tensor or a tuple of positional inputs, on the model's device.

    Returns:
        The MAC count.
    """
    own = getattr(model, "count_macs", None)
    if callable(
        own
    ):  # ops fvcore cannot trace (the sparse bicubic resize) are counted by the model
        return int(own(inputs))
    return round(flop_analysis(model, inputs).total())


def unsupported_ops(model: nn.Module, inputs: Inputs) -> dict[str, int]:
    """Ops that fvcore saw but counted as 0 MACs, with how often each ran.

    Expect elementwise ops, reductions and ``softmax`` here (not counted by convention). A
    multiply-accumulate op in this list would mean the MAC count is too low.

    Args:
        model: The network.
        inputs: One tensor or a tuple of positional inputs, on the model's device.

    Returns:
        ``{"aten::op": calls}``, most frequent first.
    """
    return dict(flop_analysis(model, inputs).unsupported_ops().most_common())


def _param_device_dtype(model: nn.Module) -> tuple[torch.device | None, torch.dtype]:
    """Device and floating dtype of the model's first parameter/buffer (None, float32 if none)."""
    device = None
    for t in (*model.parameters(), *model.buffers()):
        device = device or t.device
        if t.is_floating_point():
            return t.device, t.dtype
    return device, torch.float32


def macs_at(
    model: nn.Module,
    scale: int,
    out_hw: tuple[int, int] = (720, 1280),
    in_channels: int = 3,
) -> int:
    """MACs for a ×``scale`` model producing an ``out_hw`` output (1280×720 by default).

    The input is a batch-1 zero tensor of size :func:`lr_size_for_output` on the model's
    device and in its floating dtype.

    Args:
        model: An SR network taking one ``(1, C, H, W)`` image.
        scale: The model's upscaling factor.
        out_hw: HR output size ``(H, W)``.
        in_channels: Input channels ``C``.

    Returns:
        The MAC count (see :func:`count_macs`).
    """
    h, w = lr_size_for_output(scale, out_hw)
    device, dtype = _param_device_dtype(model)
    x = torch.zeros(1, in_channels, h, w, device=device, dtype=dtype)
    return count_macs(model, x)


@dataclass(frozen=True)
class ModelCost:
    """The cost summary every table of the kit shows for a network."""

    params: int  # trainable parameters of the training graph
    params_deploy: int  # of the deployed graph (re-parameterised branches fused)
    macs: int  # at a 1280x720 output (fvcore: one multiply-add = one MAC)


def model_cost(model: nn.Module, scale: int | None = None) -> ModelCost:
    """Parameters (training and deployed graphs) and MACs at 720p of an SR network.

    ``scale`` defaults to ``model.config.scale`` (a network built by ``build_model``).
    """
    from .models import deploy

    if scale is None:
        scale = getattr(getattr(model, "config", None), "scale", None)
        if scale is None:
            raise ValueError("model_cost: give `scale` for a model without .config")
    return ModelCost(count_params(model), count_params(deploy(model)), macs_at(model, scale))


def module_table(
    model: nn.Module,
    inputs: Inputs,
    *,
    max_depth: int = 2,
    trainable_only: bool = True,
) -> pd.DataFrame:
    """Per-module parameters and MACs, one row per module down to ``max_depth``.

    Each row covers the module's whole subtree: ``params`` counts the parameters inside it
    (as :func:`count_params`), ``macs`` the MACs of ops executed while it was called (fvcore
    ``by_module``). The root row, named ``"(total)"``, therefore equals :func:`count_params`
    and :func:`count_macs`. Children sum to their parent only when the parent runs no ops or
    holds no parameters of its own. Uncalled modules have 0 MACs.

    Args:
        model: The network.
        inputs: One tensor or a tuple of positional inputs, on the model's device.
        max_depth: Deepest level listed; 0 = root only, 1 = direct children, ...
        trainable_only: Passed to the parameter counts.

    Returns:
        A DataFrame with columns ``module`` (qualified name; ``"(total)"`` for the root),
        ``type`` (class name), ``params``, ``macs``, ``params_pct`` and ``macs_pct``
        (percent of the root's totals; 0 where the total is 0), in module definition order.

    Raises:
        ValueError: If ``max_depth`` is negative.
    """
    import pandas as pd

    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth}")
    if callable(getattr(model, "count_macs", None)):
        by_module = {"": count_macs(model, inputs)}  # fvcore cannot trace it; see count_macs
    else:
        by_module = flop_analysis(model, inputs).by_module()
    rows = []
    for name, module in model.named_modules():  # definition order; shared modules once
        depth = 0 if name == "" else name.count(".") + 1
        if depth > max_depth:
            continue
        rows.append(
            {
                "module": name or "(total)",
                "type": type(module).__name__,
                "params": count_params(module, trainable_only=trainable_only),
                "macs": round(by_module.get(name, 0)),
            }
        )
    table = pd.DataFrame(rows, columns=["module", "type", "params", "macs"])
    for col in ("params", "macs"):
        total = table.loc[0, col]
        table[f"{col}_pct"] = 100.0 * table[col] / total if total else 0.0
    return table


# --------------------------------------------------------------------------------------------
# Latency and memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Forward-pass wall time of one model on one input, in milliseconds.

    Attributes:
        median_ms: Median over the timed repeats.
        p10_ms: 10th percentile (linear interpolation between repeats).
        p90_ms: 90th percentile.
        repeats: Number of timed calls.
        device: Device the model ran on, e.g. ``"cpu"`` or ``"cuda:0"``.
        dtype: Compute dtype: the parameters' dtype, or e.g. ``"bfloat16 (autocast)"``.
        channels_last: Whether model and 4-D inputs used ``torch.channels_last``.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    device: str
    dtype: str
    channels_last: bool


def _same_device(a: torch.device | None, b: torch.device) -> bool:
    if a is None:  # no parameters or buffers: nothing to move
        return True
    return a.type == b.type and (a.index or 0) == (b.index or 0)


@contextlib.contextmanager
def _placed(
    model: nn.Module, inputs: Inputs, device: torch.device, channels_last: bool
) -> Iterator[tuple[nn.Module, tuple[Tensor, ...]]]:
    """Yield ``(model, inputs)`` on ``device`` in eval mode without mutating the caller's model.

    ``Module.to`` works in place, so the model is deep-copied when it has to move or change
    memory format; otherwise the original is used and its training flags are restored after.
    Inputs are always copied (``Tensor.to`` never mutates).
    """
    fmt = torch.channels_last if channels_last else torch.preserve_format
    args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    args = tuple(
        a.to(device, memory_format=fmt if a.dim() == 4 else torch.preserve_format) for a in args
    )
    if _same_device(_param_device_dtype(model)[0], device) and not channels_last:
        with eval_mode(model):
            yield model, args
    else:
        moved = copy.deepcopy(model).to(device, memory_format=fmt).eval()
        yield moved, args


def _autocast_dtype(dtype: torch.dtype | None) -> torch.dtype | None:
    if dtype in (None, torch.float32):
        return None
    if dtype in (torch.bfloat16, torch.float16):
        return dtype
    raise ValueError(f"dtype must be None, float32, bfloat16 or float16, got {dtype}")


def latency(
    model: nn.Module,
    inputs: Inputs,
    *,
    device: str | torch.device = "cpu",
    warmup: int = 3,
    repeats: int = 10,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> Latency:
    """Time ``repeats`` inference forwards after ``warmup`` untimed ones.

    Runs under ``torch.inference_mode()`` in eval mode. Each call is timed with
    ``time.perf_counter``; on CUDA the device is synchronised before and after each timed
    call so the time covers the kernels, not just their launch. CPU timings depend on
    ``torch.get_num_threads()``, which is left as the caller set it.

    The caller's model is never mutated: if it lives on another device, or ``channels_last``
    is requested, a deep copy is moved instead (costs one copy of the weights); otherwise it
    is used in place and its training flags are restored.

    Args:
        model: The network.
        inputs: One tensor or a tuple of positional inputs (moved to ``device``).
        device: Where to run.
        warmup: Untimed calls first (allocator, oneDNN/cuDNN algorithm selection).
        repeats: Timed calls (≥ 1).
        dtype: ``None``/``torch.float32`` run as is; ``torch.bfloat16`` or ``torch.float16``
            run under ``torch.autocast`` on ``device``'s type (weights stay float32).
        channels_last: Use ``torch.channels_last`` for the model and 4-D inputs.

    Returns:
        A :class:`Latency`.

    Raises:
        ValueError: On ``repeats < 1``, ``warmup < 0`` or an unsupported ``dtype``.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats=}, {warmup=}")
    amp = _autocast_dtype(dtype)
    dev = resolve_device(device)
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    times: list[float] = []
    with _placed(model, inputs, dev, channels_last) as (m, args), torch.inference_mode():
        autocast = (
            torch.autocast(dev.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        )
        with autocast:
            for _ in range(warmup):
                m(*args)
            for _ in range(repeats):
                sync()
                start = time.perf_counter()
                m(*args)
                sync()
                times.append((time.perf_counter() - start) * 1e3)
        param_dtype = _param_device_dtype(m)[1]
    if len(times) > 1:
        # "inclusive" = linear interpolation between order statistics (numpy's default).
        deciles = statistics.quantiles(times, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    else:
        p10 = p90 = times[0]
    return Latency(
        median_ms=statistics.median(times),
        p10_ms=p10,
        p90_ms=p90,
        repeats=repeats,
        device=str(dev),
        dtype=f"{str(amp).removeprefix('torch.')} (autocast)"
        if amp is not None
        else str(param_dtype).removeprefix("torch."),
        channels_last=channels_last,
    )


class _StorageTracker:
    """Exact live/peak bytes of tensor storages created while a dispatch mode is active.

    Every op output whose storage is new (not shared with one of the op's inputs, which
    excludes views and in-place results, and not already tracked) adds its ``nbytes``; a
    ``weakref.finalize`` on the storage subtracts them when the storage is freed. Storages
    that existed before (parameters, the input) are therefore never counted.
    """

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}  # data_ptr -> nbytes of live tracked storages

    def _release(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def record(self, args: Any, out: Any) -> None:
        from torch.utils._pytree import tree_leaves

        inputs = {
            t.untyped_storage().data_ptr() for t in tree_leaves(args) if isinstance(t, Tensor)
        }
        for t in tree_leaves(out):
            if not isinstance(t, Tensor):
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or key in inputs or key in self._sizes:
                continue
            self._sizes[key] = nbytes
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            # Storage Python objects live exactly as long as the C++ storage, so this fires
            # when the memory is released (and a reused address is re-registered after it).
            weakref.finalize(storage, self._release, key)


def _cpu_peak(model: nn.Module, args: Sequence[Tensor]) -> int:
    from torch.utils._python_dispatch import TorchDispatchMode

    tracker = _StorageTracker()

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            tracker.record((args, kwargs), out)
            return out

    with _Mode():
        out = model(*args)
    del out  # the output counts: it is alive when the forward returns
    return tracker.peak


def peak_memory(model: nn.Module, inputs: Inputs, *, device: str | torch.device = "cpu") -> int:
    """Peak bytes of tensor memory allocated during one inference forward.

    Measured above what is alive before the call, so parameters and the input are excluded;
    intermediate activations and the output are included. Runs in eval mode under
    ``torch.inference_mode()``; the caller's model is not mutated (see :func:`latency`).

    * CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
      allocated bytes just before the call. Includes cuDNN/cuBLAS workspaces taken from the
      caching allocator, in its 512-byte-rounded block sizes.
    * CPU: PyTorch's CPU allocator keeps no peak counter, so a ``TorchDispatchMode`` tracks
      the storage of every op output exactly (sum of ``nbytes`` of live storages created in
      the forward; views and in-place results add nothing). Scratch buffers that kernels
      allocate internally (e.g. oneDNN workspaces) are not tensors and are not seen.

    Args:
        model: The network.
        inputs: One tensor or a tuple of positional inputs (moved to ``device``).
        device: Where to run.

    Returns:
        Peak bytes.
    """
    dev = resolve_device(device)
    with _placed(model, inputs, dev, False) as (m, args), torch.inference_mode():
        if dev.type == "cpu":
            return _cpu_peak(m, args)
        if dev.type != "cuda":
            raise ValueError(f"peak_memory supports cpu and cuda devices, got {dev}")
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        baseline = torch.cuda.memory_allocated(dev)
        out = m(*args)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - baseline
        del out
        return peak
