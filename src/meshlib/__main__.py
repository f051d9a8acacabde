"""``python -m meshlib``: the command line."""

import sys

from meshlib._cli import main

sys.exit(main())
