"""Run every benchmark (or those named): ``python -m bench [api engines ...]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    here = Path(__file__).parent
    available = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)])
                       if m.name.startswith("bench_"))
    failed = []
    for name in names or available:
        print(f"\n=== bench {name} ===", flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        try:
            module.main()
        except Exception as exc:  # noqa: BLE001 - report and go on with the next benchmark
            print(f"bench {name} failed: {exc!r}", flush=True)
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
