"""``python -m solvers``: the ``pinnk`` command line (see :mod:`solvers._cli`)."""

import sys

from ._cli import main

sys.exit(main())
