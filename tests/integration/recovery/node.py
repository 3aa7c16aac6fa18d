"""A Trellis node in its own process, for the recovery tests.

    python node.py STORE_URL LOGFILE [--workers N] [--lease S] [--janitor-interval S]
                   [--poll-interval S] [--claim-ahead N] [--prefetch N]

Runs the task types of ``recovery_app`` on the store until SIGTERM or SIGINT, then drains
and exits 0. Appends ``ready <pid>`` to LOGFILE once it works, ``stopped <pid>`` once
drained; the handlers log there too (see ``recovery_app``).
"""

from __future__ import annotations

import argparse
import signal

import recovery_app  # beside this script: the script's folder leads sys.path
import trio

from trellis_actors import open_runtime


async def main(args: argparse.Namespace) -> None:
    recovery_app.open_log(args.log)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_runtime(
            recovery_app.app,
            store=args.store,
            workers=args.workers,
            lease=args.lease,
            janitor_interval=args.janitor_interval,
            poll_interval=args.poll_interval,
            claim_ahead=args.claim_ahead,
            prefetch=args.prefetch,
            grace_period=5.0,
        ):
            recovery_app.note("ready", "-")
            async for _ in signals:
                break
    recovery_app.note("stopped", "-")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("log")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--janitor-interval", type=float, default=0.5)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--claim-ahead", type=int, default=32)
    parser.add_argument("--prefetch", type=int, default=4)
    trio.run(main, parser.parse_args())
