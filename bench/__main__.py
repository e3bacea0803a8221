"""`python -m bench`: run the benchmarks at full size, print each report and the machine, and
append them to bench/RESULTS.md (refreshing its headline table after a run of them all).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    callback,
    eventbridge,
    fixture,
    flex,
    lifecycle,
    scale,
    statistics_endpoints,
    suite,
)
from bench.common import (
    README_PATH,
    RESULTS_PATH,
    BenchError,
    Machine,
    Report,
    print_report,
    write_results,
)
from bench.loadgen import GENERATORS, choose_generator

BENCHMARKS: dict[str, Callable[[argparse.Namespace], Report]] = {
    "callback": lambda args: callback.run(generator=args.generator),
    "lifecycle": lambda args: lifecycle.run(),
    "scale": lambda args: scale.run(),
    "suite": lambda args: suite.run(),
    "statistics": lambda args: statistics_endpoints.run(),
    "fixture": lambda args: fixture.run(),
    "eventbridge": lambda args: eventbridge.run(),
    "flex": lambda args: flex.run(),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"which to run (default all: {', '.join(BENCHMARKS)})"
    )
    parser.add_argument("--generator", choices=GENERATORS, default="auto")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="file to append to")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)

    machine = Machine.current()
    print(f"Machine: {machine.describe()}", flush=True)
    if "callback" in names:
        print(f"Load generator: {choose_generator(args.generator)}", flush=True)
    print(flush=True)

    reports: list[Report] = []
    failed: list[str] = []
    for name in names:
        print(f"Running {name} ...", flush=True)
        try:
            report = BENCHMARKS[name](args)
        except (BenchError, OSError) as exc:
            failed.append(name)
            print(f"{name} failed: {exc}", file=sys.stderr, flush=True)
            continue
        except Exception:
            failed.append(name)
            traceback.print_exc()
            continue
        print_report(report)
        reports.append(report)

    if reports:
        label = "make bench" if names == list(BENCHMARKS) else "python -m bench " + " ".join(names)
        write_results(
            reports,
            machine,
            args.results,
            label=label,
            update_headline=not failed and not args.names,
            # The README shows the headline of the project's own results file only.
            readme=README_PATH if args.results == RESULTS_PATH else None,
        )
        print(f"Appended to {args.results}", flush=True)
    missed = [f"{report.title}: {row.label}" for report in reports for row in report.missed]
    if missed:
        print("Targets missed: " + "; ".join(missed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
