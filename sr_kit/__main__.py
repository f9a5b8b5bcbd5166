"""``python -m sr_kit`` runs the ``sr-kit`` command."""

import sys

from .cli import main

sys.exit(main())
