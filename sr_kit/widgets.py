"""An ablation panel generated from a network's config dataclass (ipywidgets 8).

One control per config field: a checkbox for a boolean switch, a dropdown for a choice, a number
box for a size. Every change rebuilds the network (no training) and updates, in place, its
parameters (training and deployed graphs), MACs at 720p and CPU latency, with the difference to the
full model. The Train button runs a brief training of the current config (quick mode on a CPU),
records it in the run registry, and updates an ablation table and a params-vs-PSNR plot. Errors are
shown in the panel. Imported lazily: ``import sr_kit`` does not import ipywidgets.

Used in notebooks/11_ablations.ipynb and 12_params_vs_psnr.ipynb.
"""

from __future__ import annotations

import dataclasses
import html
import tempfile
import typing
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .config import (
    SCALES,
    ConfigError,
    ModelConfig,
    TrainConfig,
    config_hash,
    diff_label,
    field_choices,
    switches,
    train_config,
)
from .runconfig import RunConfig

__all__ = ["AblationPanel", "Costs", "measure_costs", "panel_train_config"]


def panel_train_config() -> TrainConfig:
    """The Train button's default settings: quick-cpu on a CPU, brief-gpu capped at 90 s."""
    import torch

    if torch.cuda.is_available():
        return train_config("brief-gpu", time_budget_s=90.0)
    return train_config("quick-cpu")


@dataclasses.dataclass(frozen=True)
class Costs:
    """What the panel shows for one config."""

    params: int
    params_deploy: int
    macs: int
    latency_ms: float | None


def measure_costs(cfg: ModelConfig, *, latency_lr: tuple[int, int] | None = (90, 160)) -> Costs:
    """Parameters, deployed parameters, MACs at 720p and CPU latency (median ms) of a config."""
    import torch

    from .complexity import latency, model_cost
    from .models import build_model, deploy

    model = build_model(cfg)
    cost = model_cost(model, cfg.scale)
    ms = None
    if latency_lr is not None:
        x = torch.zeros(1, 3, *latency_lr)
        ms = latency(deploy(model), x, device="cpu", warmup=1, repeats=3).median_ms
    return Costs(cost.params, cost.params_deploy, cost.macs, ms)


def _control(cfg: ModelConfig, f: dataclasses.Field, hint: Any) -> W.Widget:
    value = getattr(cfg, f.name)
    desc = f.name
    style = {"description_width": "110px"}
    layout = W.Layout(width="260px")
    if f.name == "scale":
        return W.Dropdown(options=list(SCALES), value=value, description=desc, style=style,
                          layout=layout)  # fmt: skip
    choices = field_choices(f, hint)
    if hint is bool:
        return W.Checkbox(value=value, description=desc, indent=False, layout=layout)
    if choices is not None:
        options = [(f"{c:.4g}" if isinstance(c, float) else str(c), c) for c in choices]
        return W.Dropdown(options=options, value=value, description=desc, style=style,
                          layout=layout)  # fmt: skip
    if hint is int:
        return W.BoundedIntText(value=value, min=1, max=512, description=desc, style=style,
                                layout=layout)  # fmt: skip
    raise TypeError(f"no widget for config field {f.name} of type {hint}")


class AblationPanel:
    """A widget panel for one network family.

    Args:
        base: The full model's run: its model config (deltas are shown against it), and the
            training settings and data of the Train button. A bare ``ModelConfig`` trains with
            :func:`panel_train_config` on the embedded data.
        registry: Where trainings are recorded (a ``Registry`` or path; default: in memory).
        measure_latency: Time the deployed model on the CPU at each change (about 0.1-0.5 s).
        trainer: The training function (``run_training``'s signature); tests inject a fake one.

    Attributes:
        controls: Field name -> widget. ``value``: the current model config. ``run``: the
            ``RunConfig`` the Train button trains next. ``widget``: the VBox.
    """

    def __init__(
        self,
        base: ModelConfig | RunConfig,
        *,
        registry: Any = None,
        measure_latency: bool = True,
        trainer: Callable[..., Any] | None = None,
    ) -> None:
        from .runs import Registry

        if not isinstance(base, RunConfig):
            base = RunConfig(model=base, train=panel_train_config())
        self.base_run = base
        self.base = base.model
        self.cls = type(base.model)
        self.train_cfg = base.train
        self.registry = (
            registry if isinstance(registry, Registry) else Registry(registry or ":memory:")
        )
        self.latency_lr = (90, 160) if measure_latency else None
        self._trainer = trainer
        self._costs: dict[str, Costs] = {}
        self.trained: list[dict[str, Any]] = []  # one record per finished training
        self.figure = None

        hints = typing.get_type_hints(self.cls)
        sw = switches(self.base)
        self.controls: dict[str, W.Widget] = {}
        rows = []
        for f in dataclasses.fields(self.base):
            ctl = _control(self.base, f, hints[f.name])
            self.controls[f.name] = ctl
            claim = sw.get(f.name, {}).get("claim", "")
            doc = sw.get(f.name, {}).get("doc", "size" if f.name != "scale" else "upscaling factor")
            note = f"<b>{html.escape(claim)}</b><br>" if claim else ""
            label = W.HTML(f"<span style='font-size:90%'>{note}{html.escape(doc)}</span>",
                           layout=W.Layout(width="480px"))  # fmt: skip
            rows.append(W.HBox([ctl, label]))
            ctl.observe(self._on_change, names="value")
        self.readout = W.HTML()
        self.status = W.HTML()
        self.progress = W.IntProgress(
            value=0,
            min=0,
            max=self.train_cfg.steps,
            description="train",
            layout=W.Layout(width="420px"),
        )
        self.train_button = W.Button(
            description="Train",
            button_style="primary",
            tooltip="a brief training of this config; recorded",
        )
        self.train_button.on_click(lambda _: self.train())
        self.table = W.HTML()
        self.plot = W.Output()
        self.widget = W.VBox([
            W.HTML(f"<h4>{self.base.name}: ablation switches</h4>"), *rows, self.readout,
            W.HBox([self.train_button, self.progress]), self.status, self.table, self.plot,
        ])  # fmt: skip
        self._base_costs = self.costs(self.base)
        self._update_readout()

    # -- state -----------------------------------------------------------------------------
    @property
    def value(self) -> ModelConfig:
        """The config the controls describe (raises ConfigError for invalid combinations)."""
        values = {name: ctl.value for name, ctl in self.controls.items()}
        return self.cls(**values)

    @property
    def run(self) -> RunConfig:
        """The run the Train button trains next: this config, the next unused seed."""
        cfg = self.value
        seed = sum(1 for r in self.trained if r["config_hash"] == config_hash(cfg))
        return dataclasses.replace(self.base_run, model=cfg, seed=seed)

    def costs(self, cfg: ModelConfig) -> Costs:
        key = config_hash(cfg)
        if key not in self._costs:
            self._costs[key] = measure_costs(cfg, latency_lr=self.latency_lr)
        return self._costs[key]

    def _error(self, message: str) -> None:
        self.status.value = f"<span style='color:#b00'>{html.escape(message)}</span>"

    # -- callbacks ---------------------------------------------------------------------------
    def _on_change(self, change: dict) -> None:
        self._update_readout()

    def _update_readout(self) -> None:
        try:
            cfg = self.value
        except ConfigError as err:
            self.readout.value = ""
            self.status.value = (
                f"<span style='color:#b00'>invalid config: {html.escape(str(err))}</span>"
            )
            self.train_button.disabled = True
            return
        self.train_button.disabled = False
        self.status.value = ""
        c, b = self.costs(cfg), self._base_costs

        def delta(a: float, ref: float, fmt: str) -> str:
            d = a - ref
            return "" if d == 0 else f" ({'+' if d > 0 else '−'}{fmt.format(abs(d))} vs full)"

        lat = ""
        if c.latency_ms is not None:
            # a ratio, not a difference: timings are noisy, and "0.7x the full model" reads better
            ratio = "" if c == b else f" ({c.latency_ms / b.latency_ms:.2f}x the full model)"
            lat = (f"<br>CPU latency (deployed, LR {self.latency_lr[1]}x{self.latency_lr[0]}): "
                   f"{c.latency_ms:.1f} ms{ratio}")  # fmt: skip
        self.readout.value = (
            f"<div class='sr-kit-readout'>params: {c.params:,}{delta(c.params, b.params, '{:,}')}"
            f"<br>params (deployed): {c.params_deploy:,}"
            f"{delta(c.params_deploy, b.params_deploy, '{:,}')}"
            f"<br>MACs at 720p: {c.macs / 1e9:.2f} G{delta(c.macs / 1e9, b.macs / 1e9, '{:.2f} G')}"
            f"{lat}</div>"
        )

    # -- training ----------------------------------------------------------------------------
    def train(self) -> dict[str, Any] | None:
        """Train the current config once (next seed); update the table and plot. Never raises."""
        try:
            run = self.run
        except ConfigError as err:
            self._error(str(err))
            return None
        cfg, seed = run.model, run.seed
        self.progress.max, self.progress.value = run.train.steps, 0
        self.train_button.disabled = True
        self.status.value = f"training {html.escape(self._label(cfg))} (seed {seed}) ..."

        def on_record(rec: dict[str, float]) -> None:
            self.progress.value = int(rec["step"])

        try:
            trainer = self._trainer
            if trainer is None:
                from .experiment import run_training as trainer

            out = trainer(run, registry=self.registry, progress=False, callbacks=[on_record],
                          run_dir=tempfile.mkdtemp(prefix="sr-kit-panel-"),
                          command="sr_kit.widgets.AblationPanel")  # fmt: skip
        except Exception as err:  # shown in the panel rather than as a dead cell
            self._error(f"training failed: {type(err).__name__}: {err}")
            self.train_button.disabled = False
            return None
        self.train_button.disabled = False
        metric = out.metrics[0] if out.metrics else {}
        record = {
            "label": self._label(cfg), "config_hash": config_hash(cfg), "seed": seed,
            "params": self.costs(cfg).params, "params_deploy": self.costs(cfg).params_deploy,
            "psnr_y": metric.get("psnr_y"), "dataset": metric.get("dataset"),
            "steps": out.steps, "device": out.device, "run_id": out.run_id,
        }  # fmt: skip
        self.trained.append(record)
        self.progress.value = self.progress.max
        self.status.value = (f"done: {html.escape(record['label'])}, seed {seed}: PSNR_Y "
                             f"{record['psnr_y']:.2f} dB on {record['dataset']} "
                             f"({out.steps} steps on {out.device})")  # fmt: skip
        self._update_results()
        return record

    def _label(self, cfg: ModelConfig) -> str:
        return diff_label(cfg, self.base, empty="full model")

    def results(self):
        """The trainings so far, one row per config: n, mean and std of PSNR_Y, params."""
        import pandas as pd

        if not self.trained:
            return pd.DataFrame(columns=["label", "n", "params", "psnr_mean", "psnr_std"])
        df = pd.DataFrame(self.trained)
        return (df.groupby("label", sort=False)
                .agg(n=("seed", "count"), params=("params", "first"),
                     params_deploy=("params_deploy", "first"),
                     psnr_mean=("psnr_y", "mean"), psnr_std=("psnr_y", "std"))
                .reset_index())  # fmt: skip

    def _update_results(self) -> None:
        table = self.results()
        self.table.value = table.round(3).to_html(index=False, na_rep="–")
        import matplotlib.pyplot as plt

        from .plots import DPI, STYLE, _place_labels, interval_halfwidth

        self.plot.clear_output(wait=True)
        with self.plot, plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(8.0, 4.5), dpi=DPI)  # the kit's style: 800 px wide
            pairs = zip(table.psnr_std, table.n, strict=True)
            err = [interval_halfwidth(sd, int(n)) for sd, n in pairs]
            err = [0.0 if e != e else e for e in err]  # NaN (one seed): no bar
            ax.errorbar(table.params / 1e3, table.psnr_mean, yerr=err, fmt="o", ms=7, capsize=4)
            texts = [ax.text(row.params / 1e3, row.psnr_mean, row.label, fontsize=10)
                     for _, row in table.iterrows()]  # fmt: skip
            device = ", ".join(sorted({str(r["device"]) for r in self.trained}))
            ax.set(xlabel="parameters (thousands)", ylabel="PSNR, Y channel (dB)",
                   title=f"{self.base.name}: brief trainings ({device})\n"
                         "mean over seeds; error bars: 95 % t interval (n ≥ 2)")  # fmt: skip
            ax.grid(alpha=0.3)
            ax.margins(x=0.15, y=0.2)
            fig.tight_layout()
            _place_labels(ax, texts, list(table.params / 1e3), list(table.psnr_mean))
            self.figure = fig  # kept for inspection (Output widgets capture only in a kernel)
            plt.show()
            plt.close(fig)
