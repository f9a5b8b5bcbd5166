"""Importing this module registers every released-weight format the kit knows."""

from . import baseline_formats, bsrn, carn, dlgsanet, rlfn, smsr  # noqa: F401
