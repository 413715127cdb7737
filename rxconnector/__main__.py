"""``python -m rxconnector``: the same command line as the ``rxconnector`` script."""

from __future__ import annotations

from rxconnector.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
