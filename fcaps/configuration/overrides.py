"""Values set over SNMP, layered over the operator's file.

The daemon never rewrites the operator's TOML (comments and layout would not survive,
and configuration management would fight the agent). An SNMP SET instead changes the
override dict, persisted by `persist.OverrideStore`, and the effective configuration is
`apply_overrides(file_config, overrides)`: overrides win. Its shape:

    {"timing": {"heartbeat_interval_ms": 1000, ...},
     "notify_email": "ops@example.org",              # replaces notify.email.to ("" = none)
     "services": {"<index>": {<service fields>, "row_status": "active" | "notInService"}
                             | {"deleted": true}},
     "aliases": {same idea}}

Rows are keyed by their MIB index. A row override merges over the file row with that
index, or creates a row when there is none. The result is validated with exactly the
rules the file is, and problems are reported with keys like
`overrides.timing.heartbeat_interval_ms` or `overrides.services.7.name`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from haoscar_snmp.config import rules
from haoscar_snmp.config.errors import (
    ConfigError,
    Issue,
    Loc,
    Problem,
    issues_from_validation_error,
    problems_from_issues,
)
from haoscar_snmp.config.schema import (
    AliasConfig,
    Config,
    Email,
    NotifyConfig,
    ServiceConfig,
    TimingConfig,
)

OVERRIDE_KEYS = ("timing", "notify_email", "services", "aliases")
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


def apply_overrides(config: Config, overrides: dict[str, Any], *, source: str = "overrides.json") -> Config:
    """The effective configuration: `config` (from the file) with `overrides` winning.

    Raises ConfigError listing every problem; `source` names the overrides in problems.
    """
    if not isinstance(overrides, dict):
        raise ConfigError([Problem(source, "overrides", "must be a JSON object")])
    expected = ", ".join(OVERRIDE_KEYS)
    issues: list[Issue] = [(("overrides", key), f"unknown key (expected one of {expected})")
                           for key in overrides if key not in OVERRIDE_KEYS]
    # A part that fails its own validation is None below, so the cross-field rules still
    # run on everything else and one SET hears about every problem at once.
    timing = _timing(config.timing, overrides.get("timing"), issues)
    notify = _notify(config.notify, overrides["notify_email"], issues) if "notify_email" in overrides \
        else config.notify
    services, service_origins = _table(config.services, overrides.get("services"), ServiceConfig, "services",
                                       issues)
    aliases, alias_origins = _table(config.aliases, overrides.get("aliases"), AliasConfig, "aliases", issues)

    sections = replace(rules.Sections.of(config), timing=timing, services=services, aliases=aliases)
    origins = {"services": service_origins, "aliases": alias_origins}
    issues += [(_blame(loc, "timing" in overrides, origins), message)
               for loc, message in rules.check(sections)]
    if issues:
        raise ConfigError(problems_from_issues(source, issues))
    values = {name: getattr(config, name) for name in Config.model_fields}
    values.update(timing=timing, notify=notify, services=services, aliases=aliases)
    return Config.model_validate(values)


def check_candidate(config: Config, overrides: dict[str, Any]) -> list[Problem]:
    """The problems `apply_overrides` would raise, or []; the SET path's consistency check."""
    try:
        apply_overrides(config, overrides)
    except ConfigError as error:
        return error.problems
    return []


def _timing(timing: TimingConfig, patch: Any, issues: list[Issue]) -> TimingConfig | None:
    if patch is None:
        return timing
    if not isinstance(patch, dict):
        issues.append((("overrides", "timing"), "must be an object"))
        return None
    try:
        return TimingConfig.model_validate({**timing.model_dump(), **patch})
    except ValidationError as error:
        issues.extend(issues_from_validation_error(error, ("overrides", "timing")))
        return None


def _notify(notify: NotifyConfig, address: Any, issues: list[Issue]) -> NotifyConfig:
    # haoscarNotifyEmail is one address; "" means nobody.
    if not isinstance(address, str):
        issues.append((("overrides", "notify_email"), "must be a string"))
        return notify
    if address:
        try:
            _EMAIL.validate_python(address)
        except ValidationError as error:
            issues.extend(issues_from_validation_error(error, ("overrides", "notify_email")))
            return notify
    email = notify.email.model_copy(update={"to": (address,) if address else ()})
    return notify.model_copy(update={"email": email})


def _row_index(key: Any) -> int | None:
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and 1 <= key <= 65535:
        return key
    return None


def _table(rows: tuple[Any, ...], patches: Any, model: type[BaseModel], table: str, issues: list[Issue]
           ) -> tuple[tuple[Any, ...], dict[int, str]]:
    """Rows with the overrides applied, and {position: override key} for the rows they touched.

    A file row whose override fails validation becomes None (see rules.Sections).
    """
    if patches is None:
        return rows, {}
    if not isinstance(patches, dict):
        issues.append((("overrides", table), "must be an object keyed by row index"))
        return rows, {}
    position = {row.index: pos for pos, row in enumerate(rows)}
    result = list(rows)
    created: list[Any] = []
    deleted: set[int] = set()
    touched: dict[int, str] = {}  # row index -> override key
    for key, patch in patches.items():
        loc: Loc = ("overrides", table, str(key))
        index = _row_index(key)
        if index is None:
            issues.append((loc, "row keys are indexes 1..65535"))
            continue
        if index in touched or index in deleted:
            issues.append((loc, f"row {index} is given twice"))
            continue
        if not isinstance(patch, dict):
            issues.append((loc, "must be an object"))
            continue
        if "deleted" in patch:
            if patch != {"deleted": True}:
                issues.append((loc + ("deleted",), 'a deleted row is exactly {"deleted": true}'))
            else:
                deleted.add(index)
            continue
        if patch.get("index", index) != index:
            issues.append((loc + ("index",), "must equal the row key"))
            continue
        pos = position.get(index)
        base = rows[pos].model_dump(by_alias=True) if pos is not None else {}
        try:
            row = model.model_validate({**base, **patch, "index": index})
        except ValidationError as error:
            issues.extend(issues_from_validation_error(error, loc))
            row = None
        touched[index] = str(key)
        if pos is not None:
            result[pos] = row
        elif row is not None:
            created.append(row)
    # File rows keep their order; rows created over SNMP follow, in index order.
    result += sorted(created, key=lambda row: row.index)
    result = [row for row in result if row is None or row.index not in deleted]
    origins = {pos: touched[row.index] for pos, row in enumerate(result)
               if row is not None and row.index in touched}
    return tuple(result), origins


def _blame(loc: Loc, timing_overridden: bool, origins: dict[str, dict[int, str]]) -> Loc:
    """Point a rule's problem at the override that caused it, when one did."""
    if loc[:1] == ("timing",) and timing_overridden:
        return ("overrides",) + loc
    if len(loc) >= 2 and loc[0] in origins and isinstance(loc[1], int) and loc[1] in origins[str(loc[0])]:
        return ("overrides", loc[0], origins[str(loc[0])][loc[1]]) + loc[2:]
    return loc
