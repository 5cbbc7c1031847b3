"""Entry point of the Nuitka binary: the ``mekong`` console script (``mekong.shared.cli:main``)."""

import sys

from mekong.shared.cli import main

if __name__ == "__main__":
    sys.exit(main())
