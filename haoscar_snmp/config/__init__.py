"""Configuration (the C of FCAPS): the operator's TOML file, SNMP overrides, reload diffs.

    load_config(path)                    -> Config      (loader.py; raises ConfigError)
    apply_overrides(config, overrides)   -> Config      (overrides.py; SNMP-set values win)
    diff_configs(old, new)               -> ConfigDiff  (diff.py; reload is a diff)
    OverrideStore(state_dir), atomic_write(...)         (persist.py; the only state writer)
"""

from haoscar_snmp.config.diff import ConfigDiff, diff_configs
from haoscar_snmp.config.errors import ConfigError, Problem
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.overrides import apply_overrides, check_candidate
from haoscar_snmp.config.persist import OverrideStore, atomic_write
from haoscar_snmp.config.schema import Config

__all__ = [
    "Config", "ConfigDiff", "ConfigError", "OverrideStore", "Problem", "apply_overrides",
    "atomic_write", "check_candidate", "diff_configs", "load_config",
]
