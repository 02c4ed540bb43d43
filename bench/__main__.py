"""Run every benchmark module in bench/ (``python -m bench [--quick]``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"bench.{module.name}").run(quick=quick)


if __name__ == "__main__":
    main()
