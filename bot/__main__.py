"""`python -m bot` is the same as the `rcmod` console script."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
