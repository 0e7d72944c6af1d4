"""``python -m emailqueue.dashboard [options]``: the same as ``emailqueue dashboard``."""

import sys

from .command import main

sys.exit(main())
