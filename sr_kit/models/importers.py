"""Import the authors' released weights into kit networks.

A released file is read with ``torch.load(weights_only=True)`` (no pickled code runs), unwrapped
(BasicSR's ``{"params": ...}``, ``state_dict``/``model`` wrappers, DataParallel's ``module.``
prefixes), recognised from its keys and shapes by one of the registered ``WeightFormat``s, mapped
key by key onto the kit network, and written as a kit model file with provenance.

Every kit model takes RGB in [0, 1]. A network that was trained on [0, 255] input is made to take
[0, 1] exactly by folding the range into its weights: the first conv's weights are multiplied by
255 (``conv(255 x) = (255 W) x + b``, zero padding included) and the last conv's weights and bias
divided by 255 (everything after it, PixelShuffle, is linear). A fixed mean shift inside the
network (EDSR style) is kept as a kit buffer in [0, 1] units, since folding it into a bias would
change the zero-padded border.

Used in notebooks/13_the_family.ipynb (the authors' weights re-measured under the kit's protocol;
summarised at the end of 01_the_sr_problem).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import ConfigError, ModelConfig

__all__ = [
    "FORMATS",
    "ImportError_",
    "WeightFormat",
    "detect_format",
    "import_weights",
    "load_released",
    "map_keys",
    "register_format",
]

State = dict[str, Tensor]


class ImportError_(ValueError):
    """A released weight file that cannot be imported; the message names the file and why."""


@dataclass(frozen=True)
class WeightFormat:
    """How one family of released files maps onto one kit network.

    Attributes:
        name: Short format name, shown to users ("imdn", "carn-m", "basicsr-bsrn", ...).
        model: The kit model name the file imports into.
        description: One line: network, source repository, what the file looks like.
        detect: True when a (unwrapped) state dict is of this format (keys and shapes only).
        scales: The upscaling factors the file holds (several for multi-scale releases).
        config: The kit config for that file and scale (channels, blocks read from shapes).
        convert: The kit ``state_dict`` for that scale: every released key mapped, renamed and
            reshaped where needed; keys of other scales' upsamplers dropped. Must raise (e.g.
            through ``map_keys``) when a key is left over, so nothing is silently ignored.
        input_range: 1.0 for networks fed RGB in [0, 1]; 255.0 for [0, 255] (folded, see above).
        head: Kit keys of the weights that first see the image (multiplied by ``input_range``).
        tail: Kit key prefixes of the last conv before the output (weight and bias divided).
        mean_shift: Whether the original subtracts/adds a fixed RGB mean (kept as a buffer).
        notes: How the authors' own test script feeds the network, and known differences.
    """

    name: str
    model: str
    description: str
    detect: Callable[[State], bool]
    scales: Callable[[State], tuple[int, ...]]
    config: Callable[[State, int], ModelConfig]
    convert: Callable[[State, int], State]
    input_range: float = 1.0
    head: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    mean_shift: bool = False
    notes: str = ""


FORMATS: list[WeightFormat] = []


def register_format(fmt: WeightFormat) -> WeightFormat:
    """Add a format to ``FORMATS`` (each network module registers its own)."""
    if any(f.name == fmt.name for f in FORMATS):
        raise ValueError(f"weight format {fmt.name!r} is registered twice")
    if fmt.input_range != 1.0 and not (fmt.head and fmt.tail):
        raise ValueError(f"format {fmt.name!r}: input_range != 1 needs head and tail keys")
    FORMATS.append(fmt)
    return fmt


def map_keys(
    state: Mapping[str, Tensor],
    rules: Iterable[tuple[str, str | Callable[[re.Match], str]]],
    *,
    drop: Iterable[str] = (),
    source: str = "weights",
) -> State:
    """Rename every key of ``state`` by the first matching ``(regex, replacement)`` rule.

    A replacement is a ``re.sub`` template or a function of the match (e.g. to renumber blocks).

    Keys matching a ``drop`` regex are left out on purpose (e.g. other scales' upsamplers). A key
    that no rule or drop pattern matches is an error naming it: nothing is ignored silently.
    """
    rules = [(re.compile(p), r) for p, r in rules]
    drops = [re.compile(p) for p in drop]
    out: State = {}
    unmatched = []
    for key, value in state.items():
        if any(d.fullmatch(key) for d in drops):
            continue
        for pat, repl in rules:
            if pat.fullmatch(key):
                new = pat.sub(repl, key)
                if new in out:
                    raise ImportError_(f"{source}: keys map onto {new!r} twice")
                out[new] = value
                break
        else:
            unmatched.append(key)
    if unmatched:
        shown = ", ".join(unmatched[:8]) + (" ..." if len(unmatched) > 8 else "")
        raise ImportError_(f"{source}: no mapping for {len(unmatched)} key(s): {shown}")
    return out


def _unwrap(data: Any, path: Path) -> State:
    """The bare state dict of a released file (BasicSR, EDSR, DataParallel, plain)."""
    for _ in range(3):  # wrappers nest at most a couple of levels deep in practice
        if isinstance(data, dict) and not any(isinstance(v, Tensor) for v in data.values()):
            for key in ("params_ema", "params", "state_dict", "model", "net", "generator"):
                if key in data and isinstance(data[key], dict):
                    data = data[key]
                    break
            else:
                break
    if not isinstance(data, dict) or not data:
        raise ImportError_(f"{path}: not a state dict (found {type(data).__name__})")
    tensors = {k: v for k, v in data.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ImportError_(f"{path}: holds no tensors (keys: {', '.join(list(data)[:8])})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def load_released(path: str | os.PathLike) -> State:
    """Read a released weight file safely and return its unwrapped state dict."""
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled classes, truncated zips, not a torch file at all
        # torch's own text suggests weights_only=False, which is exactly what the kit refuses
        raise ImportError_(
            f"{path}: cannot be read safely with torch.load(weights_only=True): not a torch "
            f"weight file, or it holds pickled objects other than tensors ({type(err).__name__})"
        ) from err
    if isinstance(data, dict) and data.get("format", "").startswith("sr-kit-"):
        raise ImportError_(f"{path}: already a kit model file; use it directly")
    return _unwrap(data, path)


def _known() -> str:
    _load_formats()
    return "; ".join(f"{f.name} ({f.model}: {f.description})" for f in FORMATS)


def _load_formats() -> None:
    from . import formats  # noqa: F401  (importing the network modules registers their formats)


def detect_format(state: State, *, model: str | None = None, source: str = "weights"):
    """The one registered format that recognises ``state`` (optionally for a given model)."""
    _load_formats()
    found = [f for f in FORMATS if (model is None or f.model == model) and _safe(f.detect, state)]
    if not found:
        what = f" as model {model!r}" if model else ""
        raise ImportError_(
            f"{source}: not a released weight file the kit knows{what}. "
            f"First keys: {', '.join(list(state)[:5])}. Known formats: {_known()}"
        )
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise ImportError_(f"{source}: matches several formats ({names}); pass --model")
    return found[0]


def _safe(fn: Callable[[State], bool], state: State) -> bool:
    try:
        return bool(fn(state))
    except (KeyError, IndexError, AttributeError, ValueError):
        return False


def fold_input_range(state: State, fmt: WeightFormat) -> State:
    """Make a network trained on [0, r] input take [0, 1]: scale the head and tail convs."""
    r = float(fmt.input_range)
    if r == 1.0:
        return state
    out = dict(state)
    for key in fmt.head:
        out[key] = state[key].double().mul(r).to(state[key].dtype)
    for prefix in fmt.tail:
        for suffix in (".weight", ".bias"):
            key = prefix + suffix
            if key in out:
                out[key] = state[key].double().div(r).to(state[key].dtype)
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_weights(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    scale: int | None = None,
    model: str | None = None,
):
    """Import a released weight file; returns the kit network (and writes ``out`` if given).

    Args:
        path: The authors' file (``.pth``/``.pt``).
        out: Where to write the kit model file (with provenance); None writes nothing.
        scale: Which scale to import from a multi-scale file (required there).
        model: Restrict detection to this kit model name.
    """
    from . import build_model
    from .checkpoint import save_model

    path = Path(path)
    state = load_released(path)
    fmt = detect_format(state, model=model, source=str(path))
    scales = tuple(fmt.scales(state))
    if scale is None:
        if len(scales) > 1:
            raise ImportError_(
                f"{path}: a multi-scale {fmt.name} file (x{', x'.join(map(str, scales))}); "
                "choose one with --scale"
            )
        scale = scales[0]
    elif scale not in scales:
        raise ImportError_(
            f"{path}: a {fmt.name} file for x{', x'.join(map(str, scales))}, not x{scale}"
        )
    try:
        cfg = fmt.config(state, scale)
    except ConfigError as err:
        raise ImportError_(f"{path}: shapes give no valid {fmt.model} config: {err}") from err
    net = build_model(cfg)
    kit_state = fold_input_range(fmt.convert(state, scale), fmt)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(kit_state))
    extra = sorted(set(kit_state) - set(expected))
    if missing or extra:
        raise ImportError_(
            f"{path}: {fmt.name} mapping does not fit {fmt.model}: missing {missing[:6]}, "
            f"unexpected {extra[:6]}"
        )
    for key, value in kit_state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ImportError_(
                f"{path}: {key} has shape {tuple(value.shape)}, the kit's "
                f"{fmt.model} expects {tuple(expected[key].shape)}"
            )
    net.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in kit_state.items()}
    )
    net.eval()
    provenance = {
        "source_file": path.name,
        "source_sha256": sha256_file(path),
        "format": fmt.name,
        "description": fmt.description,
        "original_input_range": fmt.input_range,
        "original_mean_shift": fmt.mean_shift,
        "scale": scale,
        "notes": fmt.notes,
        "imported_by": "sr_kit.models.importers.import_weights",
    }
    net.provenance = provenance
    if out is not None:
        save_model(net, out, meta={"imported": provenance})
    return net
