"""Configuration plumbing: the operator's TOML file, its schema and rules, reload diffs.

The values changed over SNMP (the overrides and how they apply) are the configuration
domain's, in `fcaps/configuration/`.

    load_config(path)                    -> Config      (loader.py; raises ConfigError)
    diff_configs(old, new)               -> ConfigDiff  (diff.py; reload is a diff)
    OverrideStore(state_dir), atomic_write(...)         (persist.py; the only state writer)
"""

from haoscar_snmp.config.diff import ConfigDiff, diff_configs
from haoscar_snmp.config.errors import ConfigError, Problem
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.persist import OverrideStore, atomic_write
from haoscar_snmp.config.schema import Config

__all__ = [
    "Config", "ConfigDiff", "ConfigError", "OverrideStore", "Problem",
    "atomic_write", "diff_configs", "load_config",
]
