"""A tiny HTML builder that escapes every text and attribute value.

Pages are built from `el(...)` calls; only `Markup` (what `el` returns) goes in
unescaped, so a service name or an error text can never become markup. No inline
script or style is ever produced (the Content-Security-Policy forbids both).
"""

from __future__ import annotations

import html
from typing import Any


class Markup(str):
    """Text that is already HTML."""


def esc(value: Any) -> str:
    if isinstance(value, Markup):
        return value
    return html.escape("" if value is None else str(value), quote=True)


def el(name: str, attrs: dict[str, Any] | None = None, *children: Any) -> Markup:
    """<name attrs>children</name>; an attribute whose value is None or False is left
    out, True writes it bare; children may be strings, Markup or lists of them."""
    parts = [name]
    for key, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        parts.append(key if value is True else f'{key}="{esc(value)}"')
    opening = f"<{' '.join(parts)}>"
    if name in ("input", "meta", "link", "br"):
        return Markup(opening)
    return Markup(opening + join(children) + f"</{name}>")


def join(children: Any) -> Markup:
    out = []
    for child in children:
        if isinstance(child, (list, tuple)):
            out.append(join(child))
        else:
            out.append(esc(child))
    return Markup("".join(out))


def page(title: str, body: Any, *, script: bool = False) -> str:
    head = el("head", None,
              el("meta", {"charset": "utf-8"}),
              el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
              el("title", None, title),
              el("link", {"rel": "stylesheet", "href": "/static/panel.css"}),
              el("script", {"src": "/static/panel.js", "defer": True}) if script else "")
    return "<!DOCTYPE html>\n" + el("html", {"lang": "en"}, head, el("body", None, body))
