"""A training run as one config object: ``RunConfig`` = model + training + data + seed.

Every front end produces one: a notebook with ``dataclasses.replace``, the CLI and the ablation
grid with ``key=value`` overrides (:func:`apply_run_overrides`), the widget panel from its
controls. ``run_training`` consumes it, checkpoints and registry rows store it whole
(:meth:`RunConfig.to_dict`), and :meth:`RunConfig.hash` is the reuse key of the registry and of
``ablate``. Explained in notebooks/11_ablations.ipynb. This module imports no torch.

Override syntax (the same on the command line, in ``--grid`` and in code)::

    asym=false                  a field of the model config (bare key, as before)
    model.asym=false            the same, spelled out
    train.warmup_steps=0        a field of TrainConfig
    data.eval=set5,set14        a field of DataConfig (a list is comma-separated)
    data.val=none               an optional field set to None
    seed=3                      the run's seed
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import (
    ConfigError,
    ModelConfig,
    TrainConfig,
    canonical_json,
    config_from_dict,
    config_to_dict,
    diff_label,
    parse_field,
    stable_hash,
)

__all__ = [
    "RUN_FORMAT",
    "DataConfig",
    "RunConfig",
    "apply_run_overrides",
    "override_keys",
    "run_diff_label",
    "run_key_hash",
]

RUN_FORMAT = "sr-kit-run/1"

# Training settings that do not change the trained weights: left out of the reuse key.
_NOT_IN_KEY = ("val_every", "checkpoint_every", "device")


@dataclass(frozen=True)
class DataConfig:
    """Which images a run trains on, watches during training and is evaluated on at the end.

    ``train``: "embedded" (the kit's own images, their train split), a named set (e.g. "div2k")
    or a folder of HR images. ``val``: the set watched during training; "auto" is the embedded
    validation split when training on embedded data, else none; None for none. ``eval``: sets
    evaluated with the full protocol at the end (empty: the validation set). ``root``: where the
    named sets live (None: ``$SR_KIT_DATA``, else ``data/``).
    """

    train: str = "embedded"
    val: str | None = "auto"
    eval: tuple[str, ...] = ()
    root: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.eval, str):  # a single name given where a list belongs
            object.__setattr__(self, "eval", (self.eval,))
        elif not isinstance(self.eval, tuple):
            object.__setattr__(self, "eval", tuple(self.eval))
        if not self.train:
            raise ConfigError("data: train must name a set or a folder, got ''")
        if self.root is not None and not isinstance(self.root, str):
            object.__setattr__(self, "root", str(self.root))

    @property
    def val_set(self) -> str | None:
        """The validation set after resolving "auto"."""
        if self.val == "auto":
            return "embedded" if self.train.lower().startswith("embedded") else None
        return self.val

    @property
    def eval_sets(self) -> tuple[str, ...]:
        """The evaluation sets after resolving the default (the validation set, if any)."""
        if self.eval:
            return self.eval
        return (self.val_set,) if self.val_set else ()


def _device_type(device: str) -> str:
    """cpu/cuda/mps for a device string; "auto" is resolved (imports torch only then)."""
    if device == "auto":
        from .device import resolve_device

        return resolve_device("auto").type
    return device.split(":", 1)[0]


def run_key_hash(config: Mapping[str, Any], train: Mapping[str, Any], data: str, seed: int) -> str:
    """The reuse key: the hash of what defines a trained network.

    ``config`` is ``config_to_dict(model)``, ``train`` the training settings that change the
    weights (:meth:`RunConfig.train_key`), ``data`` the training set and ``seed`` the seed. The
    registry computes it from its own columns, so rows from before run configs existed get the
    same key as an equal run made today.
    """
    return stable_hash({"model": dict(config), "train": dict(train), "data": str(data),
                        "seed": int(seed)})  # fmt: skip


@dataclass(frozen=True)
class RunConfig:
    """One training run: the network, how it is trained, on what, and with which seed."""

    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (("model", ModelConfig), ("train", TrainConfig), ("data", DataConfig))
        for name, cls in checks:
            if not isinstance(getattr(self, name), cls):
                got = type(getattr(self, name)).__name__
                raise ConfigError(f"run: {name} must be a {cls.__name__}, got {got}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"run: seed must be an integer >= 0, got {self.seed!r}")

    # -- identity ------------------------------------------------------------------------------
    def train_key(self) -> dict[str, Any]:
        """The training settings that change the weights, with the device *type*.

        Validation and checkpoint intervals do not change the weights; the device type does (a
        CPU run is never reused as a GPU result).
        """
        d = dataclasses.asdict(self.train)
        for key in _NOT_IN_KEY:
            d.pop(key)
        d["device_type"] = _device_type(self.train.device)
        return d

    def hash(self) -> str:
        """16 hex digits identifying the trained network (model, training, train data, seed)."""
        return run_key_hash(config_to_dict(self.model), self.train_key(), self.data.train,
                            self.seed)  # fmt: skip

    # -- plain data ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"format", "model", "train", "data", "seed"}``."""
        data = dataclasses.asdict(self.data)
        data["eval"] = list(data["eval"])
        return {
            "format": RUN_FORMAT,
            "model": config_to_dict(self.model),
            "train": dataclasses.asdict(self.train),
            "data": data,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys and bad values are errors."""
        if not isinstance(d, Mapping) or d.get("format") != RUN_FORMAT:
            found = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise ConfigError(f"a run config needs format {RUN_FORMAT!r}, found {found!r}")
        unknown = sorted(set(d) - {"format", "model", "train", "data", "seed"})
        if unknown:
            raise ConfigError(f"run: unknown key(s) {', '.join(unknown)}")
        return cls(
            model=config_from_dict(dict(d["model"])),
            train=_build(TrainConfig, d.get("train", {}), "train"),
            data=_build(DataConfig, d.get("data", {}), "data"),
            seed=d.get("seed", 0),
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal runs give equal text."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"a run config must be JSON: {err}") from None
        return cls.from_dict(d)

    # -- changing it ---------------------------------------------------------------------------
    def override(self, items: Iterable[str]) -> RunConfig:
        """This run with ``key=value`` overrides applied (see the module docstring)."""
        return apply_run_overrides(self, items)


def _build(cls: type, values: Mapping[str, Any], owner: str) -> Any:
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in valid]
    if unknown:
        raise ConfigError(
            f"{owner}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    values = dict(values)
    if cls is DataConfig and isinstance(values.get("eval"), list):
        values["eval"] = tuple(values["eval"])
    return cls(**values)


_SECTIONS = {"train": TrainConfig, "data": DataConfig}


def override_keys(run: RunConfig) -> list[str]:
    """Every key :func:`apply_run_overrides` accepts for ``run``, in the documented spelling."""
    model = [f.name for f in dataclasses.fields(run.model)]
    rest = [f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in dataclasses.fields(cls)]
    return [*model, *rest, "seed"]


def apply_run_overrides(run: RunConfig, items: Iterable[str]) -> RunConfig:
    """Apply ``key=value`` strings to a run, each parsed by its field's type.

    Bare keys are model fields (``asym=false``); ``model.``, ``train.`` and ``data.`` prefixes
    pick a section; ``seed`` is the run's seed. Unknown keys and bad values raise
    ``ConfigError`` listing what is valid. Later items win.
    """
    changes: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "data": {}}
    seed = run.seed
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.steps=100)")
        key, text = (s.strip() for s in item.split("=", 1))
        if key == "seed":
            try:
                seed = int(text)
            except ValueError:
                raise ConfigError(f"run: cannot read seed={text!r}; expected an integer") from None
            continue
        section, _, name = key.rpartition(".")
        section = section or "model"
        if section == "model":
            cls, owner = type(run.model), run.model.name
        elif section in _SECTIONS:
            cls, owner = _SECTIONS[section], section
        else:
            raise ConfigError(
                f"unknown override section {section!r} in {key!r}; use a model field, "
                "model.<field>, train.<field>, data.<field> or seed"
            )
        valid = [f.name for f in dataclasses.fields(cls)]
        if name not in valid:
            prefix = "" if section == "model" else f"{section}."
            raise ConfigError(
                f"{owner}: unknown key {key!r}; valid {section} keys: "
                + ", ".join(prefix + v for v in valid)
            )
        changes[section][name] = parse_field(cls, name, text, owner=owner)
    model = dataclasses.replace(run.model, **changes["model"]) if changes["model"] else run.model
    train = dataclasses.replace(run.train, **changes["train"]) if changes["train"] else run.train
    data = dataclasses.replace(run.data, **changes["data"]) if changes["data"] else run.data
    return RunConfig(model=model, train=train, data=data, seed=seed)


def run_diff_label(run: RunConfig, base: RunConfig, empty: str = "base") -> str:
    """``key=value`` for every setting where ``run`` differs from ``base`` (seed ignored)."""
    parts = []
    if type(run.model) is type(base.model):
        label = diff_label(run.model, base.model, empty="")
        if label:
            parts.append(label)
    else:
        parts.append(f"model={run.model.name}")
    for section in ("train", "data"):
        a, b = getattr(run, section), getattr(base, section)
        for f in dataclasses.fields(a):
            va, vb = getattr(a, f.name), getattr(b, f.name)
            if va != vb:
                shown = f"{va:.4g}" if isinstance(va, float) else (
                    ",".join(va) if isinstance(va, tuple) else va
                )  # fmt: skip
                parts.append(f"{section}.{f.name}={shown}")
    return ", ".join(parts) or empty
