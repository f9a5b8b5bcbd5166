"""Classroom exercises: checkers for the notebooks in ``notebooks/exercises``, the generator of
their student versions, and the grader of filled-in student notebooks.

* :mod:`sr_kit.exercises.checks`: the ``check_*`` functions the notebooks import, one per exercise
  (``check_receptive_field`` and ``check_lmswn_rf`` for 07). Each runs deterministic sub-checks
  of a student's function against the kit, prints ``PASS: ...`` / ``FAIL: ... Hint: ...`` lines
  and a ``Score: earned / possible points`` line, and raises at the end if anything failed.
  ``checks`` only gathers them: each is defined in the module of its notebook
  (``ex01_channel_shift`` ... ``ex08_read_an_ablation``), on the shared machinery of
  :mod:`sr_kit.exercises.harness` (result, sub-check session with points, hidden tests, the
  delegation tripwire, the grading log, validators, tolerances).
* :mod:`sr_kit.exercises.release`: ``make_student`` (clear nbgrader-style solution and hidden-test
  regions) and ``release`` (write the student notebooks of a folder of ``*_solution.ipynb``).
* :mod:`sr_kit.exercises.grade`: ``grade`` (execute filled-in student notebooks with the
  instructor's check cells and score them; ``sr-kit exercises grade``).

``import sr_kit`` does not import this package, and importing this package imports neither
torch nor nbformat: the checkers below are loaded from ``checks`` on first use. The release
and grading functions live in their modules (``from sr_kit.exercises.release import
make_student, release``; ``from sr_kit.exercises.grade import grade``).
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(f"{__name__}.checks"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
