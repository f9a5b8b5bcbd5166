"""Importing this module registers every released-weight format the kit knows.

The formats are listed and used in notebooks/13_the_family.ipynb (``FORMATS``, ``import_weights``).
"""

from . import baseline_formats, bsrn, carn, dlgsanet, rlfn, smsr  # noqa: F401
