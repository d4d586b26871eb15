"""Command line: `haoscar-snmp run`, `haoscar-snmp check-config`, `haoscar-snmp version`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
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
    return p


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args)
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
