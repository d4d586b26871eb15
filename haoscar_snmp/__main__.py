"""Command line: `haoscar-snmp run`, `check-config`, `report` (the outage ledger, the audit
trail), `status` (the running daemon's view of the cluster, also as a monitoring check)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
import time
from pathlib import Path

from haoscar_snmp import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haoscar-snmp", description=(
        "HA-OSCAR high-availability agent for cluster head nodes, managed over SNMP."))
    p.add_argument("--version", action="version", version=f"haoscar-snmp {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("-c", "--config", type=Path,
                     help="operator config file (TOML); default: the embedded demo config")
    run.add_argument("--state-dir", type=Path, help="override the config's state directory")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                     help="override the config's log level")
    check = sub.add_parser("check-config", help="validate a config file and list every problem")
    check.add_argument("-c", "--config", type=Path, help="config file; default: the embedded one")
    check.add_argument("--state-dir", type=Path, help="also check overrides.json in this state directory")
    report = sub.add_parser("report", help="the outage ledger (or, with --audit, the SET and operator-action "
                                           "audit trail), read from the state directory; the daemon may run")
    report.add_argument("-c", "--config", type=Path,
                        help="config file, for its state directory and accounting windows; default: the embedded one")
    report.add_argument("--state-dir", type=Path, help="the state directory (default: the config's)")
    report.add_argument("--since", help="from this time: ISO 8601 (UTC unless a zone is given) or a duration "
                                        "before now (7d); with figures, adds the range as a window")
    report.add_argument("--until", help="up to this time (same forms; default: now)")
    report.add_argument("--format", choices=["csv", "json"], default="csv")
    report.add_argument("--window", action="append", metavar="DURATION",
                        help="a window to compute (24h, 7d, ...; repeat for several); default: the config's")
    what = report.add_mutually_exclusive_group()
    what.add_argument("--outages", action="store_true", help="list the outages instead of the figures")
    what.add_argument("--audit", action="store_true",
                      help="the accepted and refused SETs and operator actions from the event history")
    status = sub.add_parser(
        "status", help="the cluster at a glance, from the running daemon (also a monitoring check)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Show the cluster as the running daemon on this head sees it: roles, heartbeat\n"
                    "paths, LAN interfaces, services and their recovery rung, aliases and their holder,\n"
                    "active alarms, the last events, configuration sync and availability. Read from the\n"
                    "daemon's socket <state_dir>/status.sock (no network); works on either head.",
        epilog="exit codes (the monitoring-plugin convention, so this serves as a Nagios/Icinga check):\n"
               "  0  ok\n  1  degraded (warning)\n  2  failed (critical)\n"
               "  3  unknown: the daemon does not answer on its status socket\n\n"
               "colour: only on a terminal, and not when NO_COLOR is set or with --no-color")
    status.add_argument("-c", "--config", type=Path,
                        help="config file, for its state directory; default: the embedded demo config")
    status.add_argument("--state-dir", type=Path, help="the daemon's state directory (default: the config's)")
    status.add_argument("--json", action="store_true", help="print the snapshot as JSON (every row)")
    status.add_argument("--no-color", action="store_true", help="no colour, even on a terminal")
    status.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
                        help="refresh in place every SECONDS (default 2, 0.5..3600) until Ctrl-C")
    return p


AUDIT_NOTE = ("refused SETs beyond 5 at once, then one a minute, are only in the daemon's log "
              "(its audit lines 'SET by ... refused with ...'); the next one listed says how many")


def _report(args: argparse.Namespace) -> int:
    """`haoscar-snmp report`: the ledger's figures or outages, or (--audit) the audit trail."""
    from fcaps.accounting import report
    from haoscar_snmp.config.errors import ConfigError
    from haoscar_snmp.config.loader import load_config
    from haoscar_snmp.config.schema import AccountingConfig, duration_seconds

    windows = tuple(args.window or ())
    state_dir = args.state_dir
    now = time.time()
    try:
        for window in windows:
            duration_seconds(window)
        since = report.parse_time(args.since, now) if args.since else None
        until = report.parse_time(args.until, now) if args.until else now
    except ValueError as exc:
        print(f"haoscar-snmp report: {exc}", file=sys.stderr)
        return 2
    if state_dir is None or not windows:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            if state_dir is None:
                print(str(exc), file=sys.stderr)
                print("haoscar-snmp report: give --state-dir, or a configuration that loads", file=sys.stderr)
                return 2
            config = None
        if state_dir is None and config is not None:
            state_dir = Path(config.cluster.state_dir)
        windows = windows or (config.accounting.windows if config is not None else AccountingConfig().windows)
    if args.audit:
        return _audit(state_dir, since, until, args.format)
    try:
        ledger = report.open_ledger(state_dir)
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"haoscar-snmp report: {exc}", file=sys.stderr)
        return 1
    try:
        if args.outages:
            rows: list = report.outages(ledger, since, until)
            fields = list(report.OutageRow.__dataclass_fields__)
        else:
            rows = report.figures(ledger, windows, since, until)
            fields = list(report.FigureRow.__dataclass_fields__)
    except sqlite3.Error as exc:
        print(f"haoscar-snmp report: cannot read {ledger.path}: {exc}", file=sys.stderr)
        return 1
    finally:
        ledger.close()
    sys.stdout.write(report.render(rows, args.format, fields,
                                   {"since": report.iso(since), "until": report.iso(until)}))
    return 0


def _audit(state_dir: Path, since: float | None, until: float, fmt: str) -> int:
    """Accepted and refused SETs, operator actions and adopted peer settings, from the
    event history."""
    from fcaps.accounting.report import iso, render
    from fcaps.fault.history import read_events
    from haoscar_snmp.core.events import EventType, Severity

    path = state_dir / "history.sqlite"
    kinds = {EventType.CONFIG_CHANGED, EventType.SET_REFUSED, EventType.OPERATOR_ACTION, EventType.CONFIG_SYNCED}
    try:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no event history")
        events = read_events(path, {int(k) for k in kinds}, since if since is not None else float("-inf"), until)
    except (OSError, sqlite3.Error) as exc:
        print(f"haoscar-snmp report: {exc}", file=sys.stderr)
        return 1
    rows = [{"index": e["index"], "time": iso(float(e["time"])), "type": EventType(e["type"]).name.lower(),
             "subject": e["subject"], "severity": Severity(e["severity"]).name.lower(), "text": e["text"]}
            for e in events]
    if fmt == "csv":
        print(f"haoscar-snmp report: note: {AUDIT_NOTE}", file=sys.stderr)
    sys.stdout.write(render(rows, fmt, ["index", "time", "type", "subject", "severity", "text"],
                            {"since": iso(since), "until": iso(until), "note": AUDIT_NOTE}))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from haoscar_snmp.config.errors import ConfigError
    from haoscar_snmp.config.loader import load_config

    try:
        config = load_config(args.config)
        if args.state_dir:
            from fcaps.configuration.overrides import apply_overrides
            from haoscar_snmp.config.persist import OverrideStore
            apply_overrides(config, OverrideStore(args.state_dir).load())
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    where = args.config or "embedded default config"
    for advice in config.advisories():
        print(f"{where}: warning: {advice}")
    print(f"{where}: OK (cluster {config.cluster.name}, {len(config.heads)} head(s), "
          f"{len(config.services)} service(s), {len(config.aliases)} alias(es))")
    return 0


def _status(args: argparse.Namespace) -> int:
    """`haoscar-snmp status`: the snapshot from the daemon's socket; exit 0/1/2/3."""
    from haoscar_snmp.config.errors import ConfigError
    from haoscar_snmp.config.loader import load_config
    from haoscar_snmp.views import console
    from haoscar_snmp.views.server import STATUS_SOCKET

    state_dir = args.state_dir
    if state_dir is None:
        try:
            state_dir = Path(load_config(args.config).cluster.state_dir)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            print("haoscar-snmp status: UNKNOWN: give --state-dir, or a configuration that loads", file=sys.stderr)
            return console.UNKNOWN
    path = state_dir / STATUS_SOCKET
    colour = console.use_colour(sys.stdout, args.no_color)
    if args.watch is None:
        return console.once(path, args.json, colour)
    if not console.WATCH_MIN_S <= args.watch <= console.WATCH_MAX_S:
        print(f"haoscar-snmp status: --watch must be {console.WATCH_MIN_S:g}..{console.WATCH_MAX_S:g} seconds, "
              f"not {args.watch:g}", file=sys.stderr)
        return console.UNKNOWN
    return console.watch(path, args.watch, args.json, colour)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "status":
        return _status(args)
    if args.command == "check-config":
        return _check_config(args)
    if args.command == "report":
        return _report(args)
    from haoscar_snmp.daemon import Daemon, setup_logging

    setup_logging(args.log_level or "info", syslog=False)
    daemon = Daemon(args.config, state_dir=args.state_dir, log_level=args.log_level)
    try:
        return asyncio.run(daemon.run())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
