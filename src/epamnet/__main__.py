"""``python -m epamnet ...``: the ``epamnet`` command (torchrun starts training workers this way)."""

import sys

from epamnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
