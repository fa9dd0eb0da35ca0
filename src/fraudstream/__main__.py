"""``python -m fraudstream`` is the ``fraudstream`` command."""

from __future__ import annotations

from fraudstream.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
