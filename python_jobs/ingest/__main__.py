"""Command line: python -m python_jobs.ingest spotify|events ... (see docs/ingest.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from python_jobs import config, contract, db, load, logs, warehouse
from python_jobs.ingest import history, mssd, raw, rejects, spotify, timezones, tracks

FORMATS = ("raw", "mssd", "history")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.ingest",
                                     description="Load real data into the raw schema.")
    commands = parser.add_subparsers(dest="command", required=True)

    sp = commands.add_parser("spotify", help="fetch playlists/tracks from the Spotify Web API "
                             "(needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET)")
    sp.add_argument("--playlist", action="append", default=[], metavar="ID",
                    help="playlist id, URI or URL; repeat for several")
    sp.add_argument("--tracks-file", type=Path,
                    help="track ids: one id/URI/URL a line, or CSV/Parquet with track_id")
    sp.add_argument("--audio-features-file", type=Path,
                    help="CSV/Parquet of audio features keyed by track_id, used when the "
                         "API refuses /audio-features (403)")
    sp.add_argument("--cache-dir", type=Path, default=spotify.DEFAULT_CACHE_DIR,
                    help="response cache folder (default: .cache/spotify)")
    sp.add_argument("--refresh", action="store_true", help="ignore cached responses")
    config.add_common_args(sp)

    ev = commands.add_parser("events", help="load a listening-history file")
    ev.add_argument("files", nargs="+", type=Path)
    ev.add_argument("--format", required=True, choices=FORMATS,
                    help="raw: the raw contract (CSV/Parquet); mssd: Music Streaming "
                         "Sessions Dataset logs and track features; history: Spotify's "
                         "extended streaming history JSON")
    ev.add_argument("--user-id", type=int, help="listener id for a history export")
    ev.add_argument("--tier", choices=contract.TIERS, default="premium",
                    help="subscription tier for a history export's user (default premium)")
    ev.add_argument("--timezone", type=_zone, metavar="ZONE",
                    help="IANA time zone of the listener(s), e.g. Asia/Kolkata (default: "
                         "from a history export's country when it has one clock, else none "
                         "= UTC)")
    order = ev.add_mutually_exclusive_group()
    order.add_argument("--dayfirst", dest="date_order", action="store_const", const="dmy",
                       help="MSSD dates like 05-07-18 are day-first (needed only when no date "
                            "in the file has a day above 12)")
    order.add_argument("--monthfirst", dest="date_order", action="store_const", const="mdy",
                       help="MSSD dates like 05-07-18 are month-first")
    ev.add_argument("--chunk-rows", type=int, default=load.CHUNK_ROWS,
                    help="rows per chunk when streaming large files")
    config.add_common_args(ev)

    tr = commands.add_parser("tracks", help="load a public track / audio-feature file (CSV "
                             "or Parquet), offline")
    tr.add_argument("files", nargs="+", type=Path)
    tr.add_argument("--map", action="append", default=[], metavar="SOURCE=TARGET",
                    help="source column for a target field, e.g. --map song_id=track_id; "
                         "repeat for several; TARGET=- ignores SOURCE (docs/ingest.md lists "
                         "the targets and the built-in mapping)")
    tr.add_argument("--chunk-rows", type=int, default=load.CHUNK_ROWS,
                    help="rows per chunk when streaming large files")
    config.add_common_args(tr)
    return parser


def _zone(value: str) -> str:
    try:
        return timezones.checked(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _events(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.exists()]
    if missing:
        print(f"no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.format == "history" and args.user_id is None:
        print("--format history needs --user-id (the export does not name the listener)",
              file=sys.stderr)
        return 2
    if args.date_order and args.format != "mssd":
        print("--dayfirst/--monthfirst are for --format mssd", file=sys.stderr)
        return 2
    warehouse.init(args.database)
    try:
        return _load_events(args)
    except load.Unreadable as exc:
        print(f"python -m python_jobs.ingest: error: {exc}", file=sys.stderr)
        return load.EXIT_UNREADABLE
    except load.Refused as exc:
        print(f"python -m python_jobs.ingest: error: {exc}", file=sys.stderr)
        return load.EXIT_REFUSED


def _load_events(args: argparse.Namespace) -> int:
    lines: list[str] = []
    # One transaction for the whole command: a failure leaves the warehouse as it was.
    with db.connect(args.database) as conn:
        if args.format == "mssd":
            lines = mssd.load_files(conn, args.files, chunk_rows=args.chunk_rows,
                                    date_order=args.date_order, timezone=args.timezone)
        else:
            for path in args.files:
                if args.format == "raw":
                    found = raw.load_file(conn, path, chunk_rows=args.chunk_rows)
                else:
                    found = history.load_file(conn, path, user_id=args.user_id,
                                              tier=args.tier, chunk_rows=args.chunk_rows,
                                              timezone=args.timezone)
                lines += [f"{path.name}: {line}" for line in found]
    db.settle(args.database, [f"{contract.RAW_SCHEMA}.listening_events"])
    # Printed only now: these are the counts the commit made true.
    print("\n".join(lines))
    return 0


def _tracks(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.exists()]
    if missing:
        print(f"no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    mapping = tracks.parse_map(args.map)
    warehouse.init(args.database)
    lines: list[str] = []
    with db.connect(args.database) as conn:
        for path in args.files:
            found = tracks.load_file(conn, path, mapping, chunk_rows=args.chunk_rows)
            lines += [f"{path.name}: {line}" for line in found]
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_level)
    if args.command == "spotify":
        return spotify.run(args.playlist, args.tracks_file, args.audio_features_file,
                           args.database, cache_dir=args.cache_dir, refresh=args.refresh)
    try:
        return _tracks(args) if args.command == "tracks" else _events(args)
    except (rejects.Unusable, load.Unreadable) as exc:
        if args.log_level.upper() == "DEBUG":
            raise
        print(f"python -m python_jobs.ingest: error: {exc}", file=sys.stderr)
        return 2
    except rejects.AllRejected as exc:
        print(f"python -m python_jobs.ingest: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
