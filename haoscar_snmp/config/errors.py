"""How configuration problems are reported: every problem at once, each as FILE: KEY: MESSAGE.

An operator who fixes one typo only to be told about the next one stops trusting
`check-config`, so validation never stops at the first problem: the loader, the
cross-field rules and the override checks all collect `Issue`s (a location inside the
configuration plus a message) and turn them into one `ConfigError` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pydantic import ValidationError

# A location inside the configuration, in the same shape pydantic uses for `loc`:
# ("services", 2, "retry_threshold") is rendered as "services[2].retry_threshold".
Loc = tuple[str | int, ...]
Issue = tuple[Loc, str]

# Keys whose values are secrets: a validation message must never quote their input.
SECRET_KEYS = frozenset({"name", "auth_key", "priv_key", "community"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration source."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(Exception):
    """The configuration (or the SNMP overrides) cannot be used; `problems` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def format_loc(loc: Loc) -> str:
    """Render a location as a dotted key: ("snmp", "users", 0, "name") -> "snmp.users[0].name"."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key or "(top level)"


def problems_from_issues(file: str, issues: Iterable[Issue]) -> list[Problem]:
    """Attach the source file name to located issues."""
    return [Problem(file, format_loc(loc), message) for loc, message in issues]


def issues_from_validation_error(error: ValidationError, prefix: Loc = ()) -> list[Issue]:
    """Turn pydantic's errors into issues, reworded for an operator editing TOML."""
    issues: list[Issue] = []
    for detail in error.errors(include_url=False):
        loc: Loc = prefix + tuple(detail["loc"])
        issues.append((loc, _message(detail, loc)))
    return issues


def _message(detail: dict, loc: Loc) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        return "unknown key (misspelt? unknown keys are errors so typos cannot hide)"
    if kind == "missing":
        return "required key is missing"
    message = str(detail["msg"])
    # Our own validators raise ValueError; pydantic prefixes those with "Value error, ".
    message = message.removeprefix("Value error, ")
    value = detail.get("input")
    is_secret = bool(loc) and loc[-1] in SECRET_KEYS
    # Quote numbers only: a range error is useless without the value, and numbers are
    # never secrets. Strings might be community strings or passphrases.
    if not is_secret and isinstance(value, (int, float)) and not isinstance(value, bool):
        message += f" (got {value})"
    return message


class CommitRefused(Exception):
    """A change that passed every local check and was refused when it was committed: the
    peer head refused it (it validates cluster-wide changes against its own state), or
    it arrived while the heads were exchanging settings. Nothing was changed. `status`
    is the SNMP error-status name the SET is answered with."""

    def __init__(self, why: str, status: str = "inconsistentValue") -> None:
        super().__init__(why)
        self.why = why
        self.status = status
