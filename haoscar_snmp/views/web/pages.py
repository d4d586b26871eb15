"""The panel's pages: login, monitoring (drawn by static/panel.js from the snapshot,
kept live over server-sent events) and configuration (plain HTML forms).

Every write is a form POST answered with a redirect back to the configuration page,
which then shows what happened: the change, or the store's reason for refusing it.
Users with the `read` role get the same pages without a single write control.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from haoscar_snmp.config.schema import Config

from .guard import clear_session_cookie, session_of, set_session_cookie
from .html import Markup, el, page
from .sessions import Session, Sessions
from .throttle import LoginThrottle
from .users import UserTable
from .writes import Field, Refused, WebWrites

log = logging.getLogger(__name__)
audit = logging.getLogger("haoscar_snmp.audit")

Snapshot = Any       # what .live.as_source gives: `await snapshot.json()`
MAX_NAME = 64
# Monitoring sections: the element ids static/panel.js fills in.
SECTIONS = (("health", "Cluster"), ("heads", "Heads"), ("paths", "Heartbeat paths"),
            ("lans", "LAN interfaces"), ("services", "Services"), ("aliases", "Aliases"),
            ("alarms", "Active alarms"), ("events", "Event history"), ("accounting", "Accounting"))
# A cluster past two heads: one section, hidden until the snapshot has a membership.
MEMBERSHIP_PARTS = (("membership-quorum", "Corosync and Pacemaker"), ("membership-nodes", "Nodes"),
                    ("membership-resources", "Resources"))


class Pages:
    def __init__(self, sessions: Sessions, users: UserTable, throttle: LoginThrottle, writes: WebWrites,
                 snapshot: Snapshot, config: Callable[[], Config], tls: bool) -> None:
        self.sessions = sessions
        self.users = users
        self.throttle = throttle
        self.writes = writes
        self.snapshot = snapshot
        self.config = config
        self.tls = tls

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/login", self.login_page), web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/", self.monitor), web.get("/state.json", self.state),
            web.get("/config", self.config_page),
            web.post("/config/timing", self.post_timing), web.post("/config/notify", self.post_notify),
            web.post("/config/{kind:services|aliases}", self.post_row),
            web.post("/config/{kind:services|aliases}/{index:[0-9]{1,5}}", self.post_row),
            web.post("/config/{kind:services|aliases}/{index:[0-9]{1,5}}/status", self.post_status),
            web.post("/config/action", self.post_action),
        ]

    # -- login ---------------------------------------------------------------------------

    def _login_html(self, message: str = "") -> str:
        form = el("form", {"method": "post", "action": "/login", "class": "login"},
                  el("h1", None, f"HA-OSCAR {self.config().cluster.name}: log in"),
                  el("p", {"class": "error", "id": "message"}, message) if message else "",
                  el("label", None, "User", el("input", {"name": "user", "autocomplete": "username",
                                                         "required": True, "maxlength": MAX_NAME})),
                  el("label", None, "Password", el("input", {"name": "password", "type": "password",
                                                             "autocomplete": "current-password",
                                                             "required": True})),
                  el("button", {"type": "submit"}, "Log in"))
        return page("Log in", form)

    async def login_page(self, request: web.Request) -> web.Response:
        return web.Response(text=self._login_html(), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name = str(form.get("user", ""))[:MAX_NAME]
        password = str(form.get("password", ""))
        address = request.remote or "?"
        if not self.throttle.allowed(address, name):
            audit.warning("web: login as %r from %s refused: too many failed logins", name, address)
            return web.Response(status=429, text=self._login_html(
                "Too many failed logins: wait a minute before trying again."), content_type="text/html",
                headers={"Retry-After": "60"})
        user = await self.users.authenticate(name, password)
        if user is None:
            self.throttle.failed(address, name)
            audit.warning("web: failed login as %r from %s", name, address)
            return web.Response(status=401, text=self._login_html("Wrong user name or password."),
                                content_type="text/html")
        session = self.sessions.create(user.name, user.role)
        audit.info("web: %s logged in from %s (role %s)", user.name, address, user.role)
        response = web.HTTPSeeOther("/")
        set_session_cookie(response, session, self.tls)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        session = session_of(request)
        self.sessions.end(session.id)
        audit.info("web: %s logged out", session.user)
        response = web.HTTPSeeOther("/login")
        clear_session_cookie(response, self.tls)
        return response

    # -- monitoring ----------------------------------------------------------------------

    def _header(self, session: Session, here: str) -> Markup:
        links = [el("a", {"href": href, "class": "here" if href == here else None}, text)
                 for href, text in (("/", "Monitoring"), ("/config", "Configuration"))]
        logout = el("form", {"method": "post", "action": "/logout", "class": "inline"},
                    el("input", {"type": "hidden", "name": "csrf", "value": session.csrf}),
                    el("button", {"type": "submit"}, "Log out"))
        config = self.config()
        return el("header", None,
                  el("strong", None, f"HA-OSCAR {config.cluster.name} on {config.cluster.local_head}"),
                  el("nav", None, links),
                  el("span", {"class": "who", "id": "who", "data-role": session.role},
                     f"{session.user} ({session.role})"), logout)

    async def monitor(self, request: web.Request) -> web.Response:
        session = session_of(request)
        sections = [el("section", {"id": key}, el("h2", None, title), el("div", {"class": "content"}))
                    for key, title in SECTIONS]
        sections.insert(6, el("section", {"id": "membership", "hidden": True}, el("h2", None, "Membership"),
                              [(el("h3", None, title), el("div", {"class": "content", "id": key}))
                               for key, title in MEMBERSHIP_PARTS]))
        body = [self._header(session, "/"),
                el("p", {"id": "live", "class": "live"}, "connecting..."),
                el("main", {"id": "monitor"}, sections)]
        return web.Response(text=page("Monitoring", body, script=True), content_type="text/html")

    async def state(self, request: web.Request) -> web.Response:
        return web.Response(text=await self.snapshot.json(), content_type="application/json")

    # -- configuration -------------------------------------------------------------------

    async def config_page(self, request: web.Request) -> web.Response:
        session = session_of(request)
        flash = ""
        if session.flash:
            flash = el("p", {"id": "flash", "class": "ok" if session.flash_ok else "error"}, session.flash)
            session.flash = ""
        body = [self._header(session, "/config"), flash, el("main", {"id": "config"}, self._config_body(session))]
        return web.Response(text=page("Configuration", body), content_type="text/html")

    def _config_body(self, s: Session) -> list[Markup]:
        w = self.writes
        out = [el("section", {"id": "timing"}, el("h2", None, "Monitoring parameters and timings"),
                  self._form(s, "/config/timing", w.timing_fields, w.timing(), "Save timings"),
                  el("h3", None, "Notification e-mail"),
                  self._form(s, "/config/notify", (Field("notify_email", "text"),),
                             {"notify_email": w.notify_email()}, "Save address"))]
        for kind, title in (("services", "Services"), ("aliases", "Aliases")):
            rows = w.rows(kind)
            parts: list[Any] = [el("h2", None, title)]
            for row in rows:
                index = row["index"]
                label = row.get("name") or row.get("address")
                summary = el("summary", None, f"{index}: {label} ({row['row_status']})")
                controls: list[Any] = [self._form(s, f"/config/{kind}/{index}", w.row_fields[kind], row, "Save")]
                if s.can_write:
                    for status, text in (("notInService", "Suspend") if row["row_status"] == "active"
                                         else ("active", "Resume"), ("destroy", "Delete")):
                        controls.append(self._button(s, f"/config/{kind}/{index}/status", text,
                                                     {"status": status}))
                    if kind == "services":
                        controls.append(self._button(s, "/config/action", "Reset its ladder",
                                                     {"action": "reset_service", "service_index": str(index)}))
                parts.append(el("details", {"class": "row", "id": f"{kind}-{index}"}, summary, controls))
            if s.can_write:
                blank = {f.key: "" for f in w.row_fields[kind]}
                blank.update({key: value for key, value in w.layouts[kind].defaults.items()})
                parts.append(el("details", {"class": "row new", "id": f"new-{kind}"},
                                el("summary", None, f"Add to {kind}"),
                                self._form(s, f"/config/{kind}", w.row_fields[kind], blank, "Add")))
            out.append(el("section", {"id": kind}, parts))
        if s.can_write:
            actions = [self._button(s, "/config/action", text, {"action": word})
                       for word, text in (("switchover", "Switchover"), ("failback", "Failback"),
                                          ("reset_counters", "Reset counters"),
                                          ("pull_peer_config", "Take the peer's settings"),
                                          ("push_local_config", "Give the peer this head's settings"))]
            out.append(el("section", {"id": "actions"}, el("h2", None, "Operator actions"), actions))
        return out

    def _form(self, s: Session, action: str, fields: tuple[Field, ...], values: dict[str, Any],
              submit: str) -> Markup:
        disabled = not s.can_write
        inputs = []
        for f in fields:
            value = values.get(f.key)
            if f.kind == "bool":
                control = el("input", {"type": "checkbox", "name": f.key, "checked": bool(value),
                                       "disabled": disabled})
            elif f.kind == "choice":
                control = el("select", {"name": f.key, "disabled": disabled},
                             [el("option", {"value": c, "selected": str(value) == c}, c) for c in f.choices])
            else:
                control = el("input", {"name": f.key, "value": "" if value is None else value,
                                       "disabled": disabled,
                                       "inputmode": "numeric" if f.kind in ("int", "optint") else None})
            inputs.append(el("label", None, el("span", None, f.key), control))
        if disabled:
            return el("div", {"class": "form readonly"}, inputs)
        bools = ",".join(f.key for f in fields if f.kind == "bool")
        return el("form", {"method": "post", "action": action, "class": "form"}, inputs,
                  el("input", {"type": "hidden", "name": "csrf", "value": s.csrf}),
                  el("input", {"type": "hidden", "name": "_bools", "value": bools}) if bools else "",
                  el("button", {"type": "submit"}, submit))

    @staticmethod
    def _button(s: Session, action: str, text: str, hidden: dict[str, str]) -> Markup:
        fields = [el("input", {"type": "hidden", "name": k, "value": v}) for k, v in hidden.items()]
        return el("form", {"method": "post", "action": action, "class": "inline"}, fields,
                  el("input", {"type": "hidden", "name": "csrf", "value": s.csrf}),
                  el("button", {"type": "submit", "name": "do", "value": text}, text))

    # -- writes --------------------------------------------------------------------------

    async def _run(self, request: web.Request, anchor: str, write: Callable[[Session, dict[str, str], str], Any]
                   ) -> web.Response:
        session = session_of(request)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            session.flash = str(await write(session, form, f"web:{session.user}"))
            session.flash_ok = True
        except Refused as refused:
            session.flash, session.flash_ok = f"Refused: {refused.why}", False
        return web.HTTPSeeOther(f"/config#{anchor}")

    async def post_timing(self, request: web.Request) -> web.Response:
        return await self._run(request, "timing", lambda s, form, who: self.writes.set_timing(form, who))

    async def post_notify(self, request: web.Request) -> web.Response:
        return await self._run(request, "timing",
                               lambda s, form, who: self.writes.set_notify_email(form.get("notify_email", ""), who))

    async def post_row(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        index = int(request.match_info["index"]) if "index" in request.match_info else None

        async def write(s: Session, form: dict[str, str], who: str) -> str:
            saved = await self.writes.save_row(kind, index, form, who)
            return f"{kind} row {saved} {'created' if index is None else 'saved'}"
        return await self._run(request, kind, write)

    async def post_status(self, request: web.Request) -> web.Response:
        kind, index = request.match_info["kind"], int(request.match_info["index"])

        async def write(s: Session, form: dict[str, str], who: str) -> str:
            done = await self.writes.set_row_status(kind, index, form.get("status", ""), who)
            return f"{kind} row {index} {done}"
        return await self._run(request, kind, write)

    async def post_action(self, request: web.Request) -> web.Response:
        async def write(s: Session, form: dict[str, str], who: str) -> str:
            raw = form.get("service_index")
            index = int(raw) if raw and raw.isdigit() else None
            return f"{form.get('action', '')}: {await self.writes.action(form.get('action', ''), index, who)}"
        return await self._run(request, "actions", write)
