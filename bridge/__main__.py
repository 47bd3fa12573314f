"""`python -m bridge` and the `alert-bridge` command."""

from __future__ import annotations

import sys

from bridge.cli import main as _cli_main

__all__ = ["main"]


def main() -> None:
    sys.exit(_cli_main())


if __name__ == "__main__":
    main()
