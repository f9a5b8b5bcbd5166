"""The checkers of the exercise notebooks in ``notebooks/exercises``, in one namespace.

The notebooks import from here (``from sr_kit.exercises.checks import check_channel_shift``).
Each checker lives in the module of its exercise, on the machinery of :mod:`.harness`:

========================================  ====================================================
module                                    checkers
========================================  ====================================================
:mod:`.ex01_channel_shift`                ``check_channel_shift``
:mod:`.ex02_fuse_asymmetric_conv`         ``check_fuse_acb``
:mod:`.ex03_split_distillation`           ``check_distill_step``
:mod:`.ex04_adaptive_weights`             ``check_adaptive_weights``
:mod:`.ex05_psnr_y_shave`                 ``check_psnr_y``
:mod:`.ex06_matlab_cubic`                 ``check_cubic``
:mod:`.ex07_receptive_field`              ``check_receptive_field``, ``check_lmswn_rf``
:mod:`.ex08_read_an_ablation`             ``check_ablation_reading``
========================================  ====================================================

Every ``check_*`` function takes the student's function(s), runs fixed, seeded sub-checks
against the kit's own implementation, prints one ``PASS: ...`` or ``FAIL: ... Hint: ...`` line
per sub-check and a ``Score: earned / possible points`` line, and returns a
:class:`CheckResult`, or raises when anything failed (``NotImplementedError`` when only stubs
failed, else ``AssertionError``); ``hidden=True`` (or :func:`.harness.hidden_tests`) adds the
hidden sub-checks; see :mod:`.harness`.
"""

from __future__ import annotations

from .ex01_channel_shift import check_channel_shift
from .ex02_fuse_asymmetric_conv import check_fuse_acb
from .ex03_split_distillation import check_distill_step
from .ex04_adaptive_weights import check_adaptive_weights
from .ex05_psnr_y_shave import check_psnr_y
from .ex06_matlab_cubic import check_cubic
from .ex07_receptive_field import check_lmswn_rf, check_receptive_field
from .ex08_read_an_ablation import check_ablation_reading
from .harness import CheckResult

__all__ = [
    "CheckResult",
    "check_ablation_reading",
    "check_adaptive_weights",
    "check_channel_shift",
    "check_cubic",
    "check_distill_step",
    "check_fuse_acb",
    "check_lmswn_rf",
    "check_psnr_y",
    "check_receptive_field",
]
