"""`python -m minirobera ...`: the same command line as the `minirobera` script (cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
