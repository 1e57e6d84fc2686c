"""``python -m tools.bench``: see the package docstring."""

import sys

from tools.bench.cli import main

sys.exit(main())
