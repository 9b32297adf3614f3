"""`python -m kubedrill ...`: the same as the `kubedrill` console script (see kubedrill.cli)."""

import sys

from kubedrill.cli import main

sys.exit(main())
