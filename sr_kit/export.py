"""Deployment: export a kit network to ONNX, check it with ONNX Runtime, and run the ONNX file.

``export_onnx`` takes the deployed (fused) graph, exports it with a dynamic batch, height and
width (``torch.onnx.export(dynamo=True)``), checks ONNX Runtime's CPU result against PyTorch's at
several image sizes, odd ones included, and only then writes the file (atomically), with its
provenance in the ONNX metadata. ``OnnxModel`` wraps an exported file as a module, so
``evaluate``, ``upscale_file`` and the latency benchmark treat it like any network.

``onnx``, ``onnxruntime`` and ``onnxscript`` are imported here only, never by ``import sr_kit``.

Explained in notebooks/02_counting_cost.ipynb ("Deployment: ONNX").
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import __version__
from .config import ONNX_CHECK_SIZES, ONNX_OPSET, ONNX_TOLERANCE
from .fileio import atomic_path

__all__ = [
    "CHECK_SIZES",
    "OPSET",
    "TOLERANCE",
    "ExportError",
    "ExportReport",
    "OnnxModel",
    "export_onnx",
    "is_onnx_path",
    "parse_size",
]

OPSET, CHECK_SIZES, TOLERANCE = ONNX_OPSET, ONNX_CHECK_SIZES, ONNX_TOLERANCE  # decided in config
META = "sr_kit."  # prefix of the kit's metadata keys in the ONNX file
# The example input of the export: a batch of 2 and two different sizes, because torch.export
# fixes every dimension whose example value is 0 or 1 and may tie dimensions that happen to be
# equal; 40x48 also clears every network's minimum size (ESA's is 15x15).
_EXAMPLE = (2, 3, 40, 48)


class ExportError(RuntimeError):
    """An export, check or ONNX file that cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` wrote and checked."""

    path: Path
    opset: int
    min_size: int
    checks: tuple[tuple[int, int, int, float], ...]  # (batch, h, w, max |diff|)
    metadata: dict[str, str]
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        sizes = ", ".join(f"{b}x3x{h}x{w}: {d:.1e}" for b, h, w, d in self.checks)
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        return (
            f"{self.path}: opset {self.opset}, dynamic batch/height/width (LR at least "
            f"{self.min_size}x{self.min_size}); ONNX Runtime matches the PyTorch deployed graph "
            f"(max |diff| {sizes}){notes}"
        )


def _runtime() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ExportError(
            f"ONNX export needs the onnx, onnxscript and onnxruntime packages ({err}); "
            "`make install` installs the pinned versions"
        ) from err
    return onnx, onnxruntime


def is_onnx_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an ONNX file (by its extension)."""
    return Path(path).suffix.lower() == ".onnx"


def parse_size(text: str) -> tuple[int, int]:
    """``"17x23"`` -> (17, 23); a clear error for anything else."""
    parts = text.lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ExportError(
            f"size {text!r}: expected HEIGHTxWIDTH in LR pixels, e.g. 17x23"
        ) from None
    if h < 1 or w < 1:
        raise ExportError(f"size {text!r}: height and width must be positive")
    return h, w


def _state_sha256(model: nn.Module) -> str:
    """A hash of the weights (names, dtypes, shapes and bytes) for a model not read from a file."""
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source(model_or_path: nn.Module | str | os.PathLike) -> tuple[nn.Module, dict[str, str]]:
    """The network to export and the provenance of where it came from."""
    from .models import load_model
    from .rundir import model_file

    if isinstance(model_or_path, nn.Module):
        model = model_or_path
        return model, {"source": "in-memory model", "source_sha256": _state_sha256(model)}
    path = model_file(model_or_path)
    if is_onnx_path(path):
        raise ExportError(f"{path}: is already an ONNX file; export takes a kit model file (.pt)")
    model = load_model(path)
    return model, {"source": path.name, "source_sha256": _file_sha256(path)}


def _dynamic_dims(proto: Any) -> list[str | int]:
    """The input's dimensions as the file states them: a name for a dynamic one, else the size."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


def _finite(bound: Any) -> int | None:
    """A range bound as an int, or None for torch's symbolic infinity."""
    try:
        return int(bound)
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None


def _size_range(program: Any) -> tuple[int, int | None]:
    """The LR heights/widths the exported graph is valid for, from torch.export's ranges.

    Guards in the forward narrow them: ESA's 7x7 max-pool window needs a 15x15 input, for
    example (PyTorch shrinks the window on smaller maps; a static graph cannot). ``None``: no
    upper bound.
    """
    ep = program.exported_program
    name = ep.graph_signature.user_inputs[0]
    node = next(n for n in ep.graph.nodes if n.name == name)
    lows, highs = [], []
    for dim in node.meta["val"].shape[2:]:
        if isinstance(dim, int):  # fixed (the caller refuses such a file)
            lows.append(dim)
            highs.append(dim)
            continue
        rng = ep.range_constraints.get(dim.node.expr)
        lows.append(max(int(rng.lower), 1) if rng is not None else 1)
        highs.append(_finite(rng.upper) if rng is not None else None)
    finite = [h for h in highs if h is not None]
    return max(lows, default=1), (min(finite) if finite else None)


def _export(net: nn.Module, opset: int) -> Any:
    """``torch.onnx.export`` of ``net`` with symbolic batch, height and width."""
    from torch.export import Dim

    x = torch.rand(*_EXAMPLE, generator=torch.Generator().manual_seed(0))
    shapes = {"x": {0: Dim("batch", min=1), 2: Dim.AUTO, 3: Dim.AUTO}}
    # the exporter logs a warning per torchvision op it cannot register (torchvision is not a
    # dependency) and warns about its own deprecations: neither concerns the user
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.inference_mode(False), torch.no_grad():
                program = torch.onnx.export(
                    _Named(net), (x,), dynamo=True, opset_version=opset,
                    dynamic_shapes=shapes, input_names=["lr"], output_names=["sr"],
                    optimize=True, verbose=False, report=False,
                )  # fmt: skip
    except Exception as err:
        raise ExportError(f"torch.onnx.export failed: {type(err).__name__}: {err}") from err
    finally:
        quiet.setLevel(level)
    return program


def _export_form(net: nn.Module) -> nn.Module:
    """Swap, in place, every module that has an ``export_form()`` for that equivalent form.

    Some forwards compute the same values in a way no exporter can trace with symbolic sizes
    (bicubic's per-size index tables, SMSR's channel gathers); their ``export_form`` does it
    with static-shape ops. ``net`` is a fresh deployed copy, so nothing else sees the change.
    """
    if inspect.ismethod(getattr(net, "export_form", None)):
        config = getattr(net, "config", None)
        net = net.export_form()
        if config is not None:
            net.config = config
        return net
    for name, child in net.named_children():
        setattr(net, name, _export_form(child))
    return net


class _Named(nn.Module):
    """Gives the exported graph's input the name ``x`` the dynamic shapes refer to."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _check(
    session: Any, net: nn.Module, sizes: Iterable[tuple[int, int]], tolerance: float
) -> list[tuple[int, int, int, float]]:
    """Compare ONNX Runtime with PyTorch on random inputs; raise on the first size that differs."""
    gen = torch.Generator().manual_seed(1)
    sizes = list(sizes)
    # every size on its own, and the first one as a batch of two (the batch is dynamic too)
    cases = [(1, h, w) for h, w in sizes] + [(2, *sizes[0])]
    results = []
    for b, h, w in cases:
        x = torch.rand(b, 3, h, w, generator=gen)
        with torch.inference_mode():
            ref = net(x).numpy()
        try:
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        except Exception as err:
            raise ExportError(
                f"ONNX Runtime failed on a {b}x3x{h}x{w} input: {type(err).__name__}: {err}"
            ) from err
        if got.shape != ref.shape:
            raise ExportError(
                f"ONNX Runtime gives shape {got.shape} for a {b}x3x{h}x{w} input, PyTorch "
                f"{ref.shape}: the export fixed a size it should have kept symbolic"
            )
        diff = float(np.abs(got - ref).max())
        if not diff <= tolerance:  # also catches NaN
            raise ExportError(
                f"ONNX Runtime differs from PyTorch on a {b}x3x{h}x{w} input: max |diff| "
                f"{diff:.3g} > {tolerance:g}"
            )
        results.append((b, h, w, diff))
    return results


def export_onnx(
    model_or_path: nn.Module | str | os.PathLike,
    out: str | os.PathLike,
    *,
    opset: int = OPSET,
    check_sizes: Sequence[tuple[int, int]] = CHECK_SIZES,
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Export the deployed graph of a kit network to ``out`` and check it with ONNX Runtime.

    The graph takes ``lr``, a float32 (N, 3, H, W) RGB batch in [0, 1], and returns ``sr``,
    (N, 3, s·H, s·W); N, H and W are dynamic. Before anything is written, ONNX Runtime (CPU) runs
    the file at each of ``check_sizes`` (and the first one as a batch of two) and must match the
    PyTorch deployed graph within ``tolerance``; the file is then written atomically.

    Args:
        model_or_path: A network built by ``build_model`` (``.config`` set), or a kit model file
            or run folder.
        out: The ``.onnx`` file to write.
        opset: ONNX opset of the export.
        check_sizes: LR (height, width) pairs to check at.
        tolerance: Largest max-abs difference accepted, on outputs in [0, 1].

    Returns:
        An :class:`ExportReport` (``.summary()`` says what was checked).

    Raises:
        ExportError: The exporter fails, a size is smaller than the graph accepts, or ONNX
            Runtime's output differs at some size (the message names it and the difference).
        sr_kit.models.CheckpointError: The model file cannot be loaded.
    """
    from .config import config_to_dict
    from .models import deploy

    onnx, ort = _runtime()
    out = Path(out)
    if not is_onnx_path(out):
        raise ExportError(f"{out}: the output file must end in .onnx")
    sizes = [tuple(int(v) for v in s) for s in check_sizes]
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise ExportError(f"check_sizes must be positive (height, width) pairs, got {check_sizes}")
    model, provenance = _source(model_or_path)
    cfg = getattr(model, "config", None)
    if cfg is None:
        raise ExportError("export needs a model built by build_model (no .config found)")
    net = _export_form(deploy(model).float().cpu().eval())
    notes = []
    if hasattr(net, "set_tlc"):
        # DLGSANet's eval default (TLC) tiles its attention on a grid that depends on the image
        # size, which a static graph cannot hold: the file attends over the whole image instead,
        # and is checked against PyTorch doing the same.
        net.set_tlc(None)
        notes.append("attention over the whole image (TLC off; the kit's eval default tiles it)")

    program = _export(net, opset)
    proto = program.model_proto
    dims = _dynamic_dims(proto)
    if len(dims) != 4 or any(isinstance(d, int) for d in (dims[0], dims[2], dims[3])):
        raise ExportError(
            f"the exporter fixed some input dimensions of {cfg.name} (input shape {dims}): a "
            "forward reads a size into a Python int; the file would only accept that size"
        )
    min_size, max_size = _size_range(program)
    if max_size is not None:
        raise ExportError(
            f"the exported {cfg.name} would only accept LR sizes up to {max_size}: a forward "
            "takes a size-dependent branch; the file would be wrong on larger images"
        )
    small = [s for s in sizes if min(s) < min_size]
    if small:
        h, w = small[0]
        raise ExportError(
            f"check size {h}x{w} is smaller than the {min_size}x{min_size} LR pixels that the "
            f"exported {cfg.name} accepts"
        )
    metadata = {
        "kit_version": __version__,
        "model": cfg.name,
        "scale": str(cfg.scale),
        "config": json.dumps(config_to_dict(cfg), sort_keys=True),
        "graph": "deploy",
        "opset": str(opset),
        "torch": torch.__version__,
        "min_size": str(min_size),
        "input": "lr: float32 (N, 3, H, W) RGB in [0, 1]; output sr: (N, 3, s*H, s*W)",
        **({"notes": "; ".join(notes)} if notes else {}),
        **provenance,
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META + key, value
    proto.producer_name, proto.producer_version = "sr-kit", __version__
    data = proto.SerializeToString()
    session = ort.InferenceSession(data, _session_options(ort), providers=["CPUExecutionProvider"])
    checks = _check(session, net, sizes, tolerance)
    metadata["checked"] = json.dumps([list(c[:3]) for c in checks])
    proto.metadata_props.add(key=META + "checked", value=metadata["checked"])
    try:
        onnx.checker.check_model(proto)
    except Exception as err:
        raise ExportError(f"the exported graph fails the ONNX checker: {err}") from err
    with atomic_path(out) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return ExportReport(out, opset, min_size, tuple(checks), metadata, tuple(notes))


def _session_options(ort: Any, threads: int | None = None) -> Any:
    options = ort.SessionOptions()
    # the same thread count as torch, so PyTorch and ONNX Runtime timings compare
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return options


class OnnxModel(nn.Module):
    """An exported ``.onnx`` SR network as a module: ``OnnxModel(path)(x)`` runs ONNX Runtime.

    Takes (N, 3, H, W) float tensors in [0, 1] like the kit's networks (moved to the CPU for ONNX
    Runtime and back). ``.config`` is the kit config stored in the file, or ``None`` for an ONNX SR
    model exported elsewhere, whose scale is then read off a probe run. ``.metadata`` holds the
    file's provenance (the ``sr_kit.*`` keys without the prefix).
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        super().__init__()
        onnx, ort = _runtime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"{self.path}: no such ONNX file")
        try:
            proto = onnx.load(str(self.path), load_external_data=False)
        except Exception as err:
            raise ExportError(f"{self.path}: not an ONNX model ({type(err).__name__})") from err
        self.metadata = {
            p.key[len(META) :]: p.value for p in proto.metadata_props if p.key.startswith(META)
        }
        self._check_signature(proto)
        try:
            self.session = ort.InferenceSession(
                str(self.path), _session_options(ort, threads), providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise ExportError(f"{self.path}: ONNX Runtime cannot load it ({err})") from err
        self.input_name = self.session.get_inputs()[0].name
        self.min_size = int(self.metadata.get("min_size", 1))
        self.config = self._config()
        self.scale = self.config.scale if self.config is not None else self._probe_scale()

    def _check_signature(self, proto: Any) -> None:
        graph = proto.graph
        inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        what = "an SR model: one float (N, 3, H, W) input and one (N, 3, s*H, s*W) output"
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ExportError(
                f"{self.path}: not {what}; it has {len(inputs)} inputs and "
                f"{len(graph.output)} outputs"
            )
        tensor = inputs[0].type.tensor_type
        dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        channels_ok = len(dims) == 4 and (dims[1] in (3, 0) or isinstance(dims[1], str))
        if tensor.elem_type != 1 or not channels_ok:  # 1 = FLOAT; 0 or a name: not stated
            raise ExportError(
                f"{self.path}: not {what}; its input {inputs[0].name!r} has element type "
                f"{tensor.elem_type} and shape {dims}"
            )

    def _config(self) -> Any:
        if "config" not in self.metadata:
            return None
        from .config import ConfigError, config_from_dict

        try:
            return config_from_dict(json.loads(self.metadata["config"]))
        except (ConfigError, ValueError) as err:
            raise ExportError(f"{self.path}: its sr_kit.config is not valid here: {err}") from err

    def _probe_scale(self) -> int:
        n = max(self.min_size, 32)
        y = self._run(np.zeros((1, 3, n, n), dtype=np.float32))
        if (
            y.ndim != 4
            or y.shape[1] != 3
            or y.shape[2] % n
            or y.shape[2] != y.shape[3]
            or y.shape[2] < 2 * n
        ):
            raise ExportError(
                f"{self.path}: not an SR model: a 1x3x{n}x{n} input gives shape {y.shape}"
            )
        return y.shape[2] // n

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            return self.session.run(None, {self.input_name: x})[0]
        except Exception as err:
            raise ExportError(
                f"{self.path}: ONNX Runtime failed on a {'x'.join(map(str, x.shape))} input: {err}"
            ) from err

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.path.name} expects (N, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            raise ValueError(
                f"{self.path.name}: an input of {h}x{w} LR pixels is smaller than the "
                f"{self.min_size}x{self.min_size} this exported network accepts"
            )
        y = self._run(x.detach().to("cpu", torch.float32).contiguous().numpy())
        return torch.from_numpy(y).to(x.device)

    def extra_repr(self) -> str:
        name = self.config.name if self.config is not None else "unknown model"
        return f"{self.path.name}: {name} x{self.scale}, ONNX Runtime (CPU)"
