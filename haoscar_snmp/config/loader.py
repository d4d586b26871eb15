"""Load the operator's TOML file (or the embedded demo) into a validated `Config`.

Every problem is collected before anything is raised: TOML syntax, each section's own
validation, secret files, then the cross-field rules on whatever validated. Sections
are validated one by one so that a typo in [[services]] does not hide a dangling
`cluster.local_head`. `parse_config` is the pure core; `load_config` only adds the
file system and the environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, TypeAdapter, ValidationError

from haoscar_snmp.config import rules
from haoscar_snmp.config.errors import (
    ConfigError,
    Issue,
    Problem,
    issues_from_validation_error,
    problems_from_issues,
)
from haoscar_snmp.config.schema import (
    AliasConfig,
    CommunityConfig,
    Config,
    Endpoint,
    HeadConfig,
    InterfaceConfig,
    NodeConfig,
    ServiceConfig,
    TargetConfig,
    UserConfig,
)
from haoscar_snmp.config.secretfiles import (
    SecretReader,
    read_secret_file,
    resolve_email_password,
    resolve_heartbeat_key,
    resolve_table,
    resolve_web,
)

EMBEDDED_NAME = "default.toml"
EMBEDDED_LABEL = "haoscar_snmp/config/default.toml (embedded)"

__all__ = ["ConfigError", "Problem", "default_state_dir", "load_config", "parse_config",
           "read_embedded_default"]


def load_config(path: Path | None, *, state_dir: Path | None = None) -> Config:
    """Load and validate `path`, or the embedded demo config when it is None.

    `state_dir` (e.g. from the command line) replaces `cluster.state_dir`. Raises
    ConfigError listing every problem found.
    """
    if path is None:
        return parse_config(read_embedded_default(), label=EMBEDDED_LABEL, base_dir=Path.cwd(),
                            environ=os.environ, state_dir=state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([Problem(str(path), "(file)", f"cannot read: {error.strerror or error}")]) from None
    except UnicodeDecodeError as error:
        raise ConfigError([Problem(str(path), "(file)", f"not UTF-8 text: {error.reason}")]) from None
    return parse_config(text, label=str(path), base_dir=path.absolute().parent,
                        environ=os.environ, state_dir=state_dir)


def read_embedded_default() -> str:
    """The demo config shipped inside the package (conf/haoscar-snmp.demo.toml is a copy)."""
    return resources.files(__package__).joinpath(EMBEDDED_NAME).read_text(encoding="utf-8")


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """What `state_dir = ""` means: $XDG_STATE_HOME/haoscar-snmp or ~/.local/state/haoscar-snmp."""
    xdg = environ.get("XDG_STATE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "haoscar-snmp"
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".local" / "state" / "haoscar-snmp"


def parse_config(text: str, *, label: str, base_dir: Path, environ: Mapping[str, str],
                 state_dir: Path | None = None, read_secret: SecretReader = read_secret_file) -> Config:
    """Validate TOML `text`; `label` names the source in problems, `base_dir` anchors relative paths."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([_syntax_problem(label, str(error))]) from None
    if state_dir is not None and isinstance(raw.get("cluster"), dict):
        raw["cluster"]["state_dir"] = str(state_dir.absolute())

    context = {"base_dir": base_dir, "default_state_dir": default_state_dir(environ)}
    values, issues = _validate_sections(raw, context)
    sections = _sections(raw, values, context)

    resolved: dict[str, Any] = {}
    for table in ("communities", "users", "targets"):
        rows = getattr(sections, table)
        if rows is not None:
            resolved[table], secret_issues = resolve_table(table, rows, read_secret)
            issues += secret_issues
    if sections.heartbeat is not None:
        resolved["heartbeat"], secret_issues = resolve_heartbeat_key(sections.heartbeat, read_secret)
        issues += secret_issues
    if sections.email is not None:
        resolved["email"], secret_issues = resolve_email_password(sections.email, read_secret)
        issues += secret_issues
    sections = replace(sections, **resolved)
    if values.get("web") is not None and values["web"].enabled:     # files of a panel that is off are not read
        values["web"], secret_issues = resolve_web(values["web"], read_secret)
        issues += secret_issues

    issues += rules.check(sections)
    if issues:
        raise ConfigError(problems_from_issues(label, issues))
    values["heartbeat"] = sections.heartbeat
    if values.get("notify") is not None:
        values["notify"] = values["notify"].model_copy(update={"email": sections.email})
    values["snmp"] = values["snmp"].model_copy(update={
        "communities": sections.communities, "users": sections.users, "targets": sections.targets})
    try:
        return Config.model_validate(values)
    except ValidationError as error:  # the rules above should have caught it; report, don't crash
        raise ConfigError(problems_from_issues(label, issues_from_validation_error(error))) from None


def _syntax_problem(label: str, message: str) -> Problem:
    # Python 3.11's TOMLDecodeError only carries the position inside its message.
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, re.DOTALL)
    if match:
        return Problem(label, f"line {match[2]}, column {match[3]}", f"TOML syntax error: {match[1]}")
    return Problem(label, "(syntax)", f"TOML syntax error: {message}")


def _section_adapter(name: str) -> TypeAdapter[Any]:
    info = Config.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:  # constraints and validators declared with the field (e.g. 1..2 heads)
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


_SECTIONS: dict[str, TypeAdapter[Any]] = {name: _section_adapter(name) for name in Config.model_fields}


def _validate_sections(raw: dict[str, Any], context: dict[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """Validate each top-level section on its own; a failed section is None in the result."""
    issues: list[Issue] = [((key,), "unknown key (misspelt? unknown keys are errors so typos cannot hide)")
                           for key in raw if key not in _SECTIONS]
    values: dict[str, Any] = {}
    for name, adapter in _SECTIONS.items():
        info = Config.model_fields[name]
        if name not in raw:
            if info.is_required():
                issues.append(((name,), "required section is missing"))
                values[name] = None
            else:
                values[name] = info.get_default(call_default_factory=True)
            continue
        try:
            values[name] = adapter.validate_python(raw[name], context=context)
        except ValidationError as error:
            issues += issues_from_validation_error(error, (name,))
            values[name] = None
    return values, issues


# Tables whose rows are validated one by one when their section fails, so the rules
# can still check the rows that are fine.
_TABLE_ROWS: dict[str, type[BaseModel]] = {
    "heads": HeadConfig, "interfaces": InterfaceConfig, "nodes": NodeConfig, "aliases": AliasConfig,
    "services": ServiceConfig,
}
_SNMP_ROWS: dict[str, type[BaseModel]] = {
    "listen": Endpoint, "communities": CommunityConfig, "users": UserConfig, "targets": TargetConfig,
}


def _rows(raw: Any, model: type[BaseModel], context: dict[str, Any]) -> tuple[Any, ...] | None:
    """Each row validated on its own (None where it fails); its errors are already reported."""
    if not isinstance(raw, list):
        return None
    rows: list[Any] = []
    for item in raw:
        try:
            rows.append(model.model_validate(item, context=context))
        except ValidationError:
            rows.append(None)
    return tuple(rows)


def _sections(raw: dict[str, Any], values: dict[str, Any], context: dict[str, Any]) -> rules.Sections:
    """Whole sections where they validated, row by row where they did not."""
    tables = {name: values[name] if values[name] is not None else _rows(raw.get(name), model, context)
              for name, model in _TABLE_ROWS.items()}
    snmp: dict[str, Any]
    if values["snmp"] is not None:
        snmp = {name: getattr(values["snmp"], name) for name in (*_SNMP_ROWS, "allow_v2c_write")}
    else:
        raw_snmp = raw.get("snmp") if isinstance(raw.get("snmp"), dict) else {}
        snmp = {name: _rows(raw_snmp.get(name, []), model, context) for name, model in _SNMP_ROWS.items()}
        allow = raw_snmp.get("allow_v2c_write", False)
        snmp["allow_v2c_write"] = allow if isinstance(allow, bool) else None
    email = values["notify"].email if values.get("notify") is not None else None
    return rules.Sections(cluster=values["cluster"], timing=values["timing"], heartbeat=values["heartbeat"],
                          email=email, failover=values["failover"], accounting=values.get("accounting"),
                          membership=values.get("membership"),
                          **tables, **snmp)
