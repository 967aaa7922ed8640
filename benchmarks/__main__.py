"""``python -m benchmarks [--quick] [--out DIR] [--only LETTERS]``: run the scenarios, write the
table (results.md) and every number (results.json)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .config import FULL, QUICK
from .harness import Bench
from .report import Row, environment, write
from .scenarios import (
    dataset,
    fleet,
    inline,
    jobs,
    kernel,
    lean,
    load,
    media,
    memory,
    refresh,
    routers,
    submit,
    tracked,
    upload,
)

SCENARIOS: dict[str, Callable[[Bench], list[Row]]] = {
    "a": submit.run, "b": inline.run, "c": refresh.run, "d": load.run, "e": kernel.run, "f": memory.run,
    "g": dataset.run, "h": tracked.run, "i": upload.run, "j": lean.run, "k": fleet.run, "l": media.run,
    "m": jobs.run, "n": routers.run,
}

DEFAULT_OUT = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, for the CI smoke test")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--only", default="".join(SCENARIOS), help="scenario letters to run, e.g. 'ac'")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {''.join(sorted(unknown))}; choose from {''.join(SCENARIOS)}")
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="sm-async-nb-bench-"))
    try:
        bench = Bench(sizes, workdir)
        for letter, scenario in SCENARIOS.items():
            if letter in args.only:
                began = time.perf_counter()
                rows += scenario(bench)
                print(f"scenario {letter}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    json_path, md_path = write(args.out, rows, environment("quick" if args.quick else "full"), elapsed)
    print(md_path.read_text())
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
