"""Run harperctl as `python -m harperctl`."""

from __future__ import annotations

import sys

from harperctl.cli import main

if __name__ == "__main__":
    sys.exit(main())
