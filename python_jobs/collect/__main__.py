"""Real-time listening events: an HTTP collector, its build loop and a load-testing client.

    python -m python_jobs.collect serve  [--host 127.0.0.1] [--port 8787] [--flush-events N]
                                         [--flush-seconds T] [--queue-events Q]
    python -m python_jobs.collect follow [--interval 60] [--warn-after-minutes M] [--once]
    python -m python_jobs.collect send   (--generate SESSIONS | --file F) [--url URL]
                                         [--rate EV_PER_S] [--batch N] [--concurrency C]

docs/collector.md tells what each guarantees. Exit status: 0 done; 1 events not stored
(serve: queued events could not be written at shutdown; send: requests given up or
rejected events); 2 bad arguments or the address cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from python_jobs import config, logs, truth
from python_jobs.collect import client, follow, server, token


def _positive(kind):
    def parse(value: str):
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return number
    return parse


def _serve(args: argparse.Namespace) -> int:
    settings = server.Settings(
        host=args.host, port=args.port, token=token.ensure(), database=args.database,
        flush_events=args.flush_events, flush_seconds=args.flush_seconds,
        queue_events=args.queue_events, max_body_bytes=args.max_body_mb << 20,
        workers=args.workers)
    return server.run(settings)


def _follow(args: argparse.Namespace) -> int:
    return follow.run(follow.Settings(
        database=args.database, interval=args.interval, poll=args.poll,
        warn_after_minutes=args.warn_after_minutes, once=args.once))


def _send(args: argparse.Namespace) -> int:
    secret = token.read()
    if not secret:
        print(f"python -m python_jobs.collect send: error: no token: set {token.ENV} or run "
              "`collect serve` once on this machine", file=sys.stderr)
        return 2
    if args.generate:
        chunks = client.generated(args.generate, args.seed)
    else:
        if not args.file.exists():
            print(f"python -m python_jobs.collect send: error: {args.file}: no such file",
                  file=sys.stderr)
            return 2
        chunks = client.file_frames(args.file)
    # Made before the clock starts: the figures are the collector's, not the generator's.
    requests = list(client.batches(chunks, args.batch, id_prefix=args.id_prefix,
                                   live=args.live, limit=args.limit))
    try:
        stats, _ = asyncio.run(client.send(
            args.url, secret, requests, rate=args.rate, concurrency=args.concurrency,
            give_up_after=args.give_up_after))
    except PermissionError as exc:
        print(f"python -m python_jobs.collect send: error: refused: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats.summary()))
    return 1 if stats.given_up or stats.rejected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.collect",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP collector")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default loopback only)")
    serve.add_argument("--port", type=int, default=8787, help="0 = any free port (printed)")
    serve.add_argument("--flush-events", type=_positive(int), default=5_000,
                       help="write a micro-batch when this many events wait (default 5000)")
    serve.add_argument("--flush-seconds", type=_positive(float), default=0.1,
                       help="... else at most one micro-batch per this many seconds, the "
                            "longest an event waits for one to start (default 0.1)")
    serve.add_argument("--queue-events", type=_positive(int), default=100_000,
                       help="events waiting or being written before requests get 429 "
                            "(default 100000)")
    serve.add_argument("--max-body-mb", type=_positive(int), default=16)
    serve.add_argument("--workers", type=_positive(int), default=1,
                       help="processes sharing the port, e.g. one per core (default 1)")
    serve.set_defaults(run=_serve)

    loop = commands.add_parser("follow", help="build the event-driven models as data arrives")
    loop.add_argument("--interval", type=_positive(float), default=60.0,
                      help="at most one build per this many seconds (default 60)")
    loop.add_argument("--poll", type=_positive(float), default=2.0,
                      help="seconds between looks at raw.load_changes (default 2)")
    loop.add_argument("--warn-after-minutes", type=_positive(int),
                      help="source freshness warns when raw.listening_events' newest row is "
                           "older (default: the var listening_events_warn_after_minutes)")
    loop.add_argument("--once", action="store_true", help="one build, then exit")
    loop.set_defaults(run=_follow)

    send = commands.add_parser("send", help="replay events to a collector")
    source = send.add_mutually_exclusive_group(required=True)
    source.add_argument("--generate", type=_positive(int), metavar="SESSIONS",
                        help="the generator's events for this many sessions")
    source.add_argument("--file", type=Path, help="NDJSON (.ndjson/.jsonl) or CSV events")
    send.add_argument("--seed", type=int, default=truth.DEFAULT_SEED)
    send.add_argument("--url", default="http://127.0.0.1:8787/v1/events")
    send.add_argument("--rate", type=float, default=0,
                      help="events per second (default 0: as fast as acknowledged)")
    send.add_argument("--batch", type=_positive(int), default=500, help="events per request")
    send.add_argument("--concurrency", type=_positive(int), default=8)
    send.add_argument("--limit", type=_positive(int), help="send at most this many events")
    send.add_argument("--id-prefix", default="",
                      help="prepended to every event_id (replay data the warehouse holds)")
    send.add_argument("--live", action="store_true",
                      help="started_at = the moment each request is sent")
    send.add_argument("--give-up-after", type=_positive(float), default=120.0,
                      help="seconds of retries before a request is given up")
    send.set_defaults(run=_send)

    for sub in (serve, loop, send):
        config.add_common_args(sub)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
