"""``python -m bench [--quick] [--keep] [--broker tansu|kafka]``: measure, then write the
report."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from bench.output import RESULTS_DIR, write_results
from bench.run import run_benchmark, utc_now
from bench.session import Session
from bench.sizes import FULL, QUICK

log = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (under 2 minutes), for smoke tests"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the servers' data directory and logs"
    )
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the embedded Tansu broker, or a three-node Apache Kafka cluster (needs Java 17+)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="report directory")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # stop the stack on SIGTERM as on Ctrl-C, and take Ctrl-C even where the parent shell
    # started us ignoring it (a background job)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sizes = QUICK if args.quick else FULL
    started = utc_now()
    data_dir = Path(tempfile.mkdtemp(prefix="govsync-bench-"))
    keep = args.keep
    try:
        with Session(data_dir, broker=args.broker) as session:
            results = run_benchmark(session, sizes, started)
        report = write_results(results, started, args.results)
    except KeyboardInterrupt:
        log.warning("interrupted: every process the benchmark started has been stopped")
        return 130
    except BaseException:
        keep = True  # the processes' logs say what went wrong
        raise
    finally:
        if keep:
            log.info("the servers' data and logs are kept in %s", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(report.read_text())
    print(f"report: {report}\nplot: {report.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
