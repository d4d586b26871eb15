"""Security with the real daemon and net-snmp's tools: credentials rotated by a reload
in the running agent, refused requests in the history and as authenticationFailure, and
no secret in the logs or the event history.

One daemon, at debug log level, serves the whole sequence: a SET, a failed request of
each kind, a reload that replaces a community and a v3 user's keys (the old ones are
refused at once, the new ones work, the pid and role do not move), then the grep.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .harness import AUTH_KEY, PRIV_KEY, READER_AUTH, READER_PRIV, R, Agent, TrapReceiver, free_udp_port, write_secret

pytestmark = pytest.mark.integration

NEW_COMMUNITY = "rotated-community-7Qx"
NEW_AUTH = "rotated-auth-key-9Zk"
NEW_PRIV = "rotated-priv-key-4Wm"
WRONG_KEY = "wrong-guess-key-3Jd"
HB_KEY = "heartbeat-key-8Vn-0123456789abcdef"
NEW_HB_KEY = "heartbeat-key-2Rb-fedcba9876543210"
SMTP_PASSWORD = "smtp-password-5Tq"
EXTRA = """
[heartbeat]
key_file = "secrets/hb.key"

[notify.email]
security = "starttls"
username = "mailer"
password_file = "secrets/smtp.pass"

[log]
level = "debug"
"""
AUTHENTICATION_FAILURE = ".1.3.6.1.6.3.1.1.5.5"
CREDENTIALS_CHANGED = f".{R}.0.36"
CLUSTER_STATE = "HAOSCAR-MIB::haoscarClusterState.0"
HB_INTERVAL = f"{R}.1.2.1.0"    # haoscarHeartbeatInterval
ENABLE_AUTHEN_TRAPS = "1.3.6.1.2.1.11.30.0"
HEAD_STATE = "HAOSCAR-MIB::haoscarHeadState.1"


def _wait_log(agent: Agent, needle: str, count: int = 1, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = agent.log_text()
        if text.count(needle) >= count:
            return text
        time.sleep(0.05)
    raise AssertionError(f"the daemon never logged {needle!r} {count} times:\n{agent.log_text()}")


def _refused(r: object) -> bool:
    text = getattr(r, "text")
    return getattr(r, "rc") != 0 and any(word in text for word in (
        "Timeout", "Authentication failure", "Decryption error", "authorizationError", "Unknown user"))


def _get_with_community(community: str) -> bytes:
    """One SNMPv2c GET datagram of sysDescr.0 (what a guesser sends, without a process per try)."""
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import api

    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1, 2, 1, 1, 1, 0), v2c.Null(""))])
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, community)
    v2c.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def _history_text(state_dir: Path) -> str:
    with sqlite3.connect(state_dir / "history.sqlite") as db:
        rows = db.execute("SELECT * FROM sqlite_master WHERE type = 'table'").fetchall()
        out = []
        for row in rows:
            out += [repr(r) for r in db.execute(f"SELECT * FROM {row[1]}")]  # noqa: S608 (our own tables)
    return "\n".join(out)


def test_credentials_rotate_on_reload_and_no_secret_is_ever_written(tmp_path: Path) -> None:
    trapd = TrapReceiver(tmp_path, free_udp_port(), communities=("public", NEW_COMMUNITY))
    trapd.start()
    agent = Agent(tmp_path, free_udp_port(), trapd.port, extra_toml=EXTRA)
    agent.write_config()
    write_secret(tmp_path / "secrets" / "hb.key", HB_KEY)
    write_secret(tmp_path / "secrets" / "smtp.pass", SMTP_PASSWORD)
    try:
        agent.start()
        pid = agent.proc.pid  # type: ignore[union-attr]
        deadline = time.monotonic() + 10        # the single head settles as active
        while (state_before := agent.v2c("snmpget", "-Oqv", CLUSTER_STATE)).out.strip() != "normal":
            assert time.monotonic() < deadline, state_before.text
            time.sleep(0.1)
        role_before = agent.v2c("snmpget", "-Oqv", HEAD_STATE)
        assert role_before.rc == 0 and role_before.out.strip(), role_before.text

        # A SET, and one failed request of each kind while authentication traps are off.
        r = agent.v3("snmpset", HB_INTERVAL, "u", "1000", mib=False)
        assert r.rc == 0, r.text
        assert _refused(agent.v2c("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0", community=WRONG_KEY))
        assert _refused(agent.v3("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0", auth=WRONG_KEY))
        assert _refused(agent.v3("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0", user="nosuchuser"))
        log = _wait_log(agent, "refused: unknown SNMPv3 user")
        assert "refused: unknown community" in log and "refused: wrong authentication key" in log
        assert trapd.text().count(AUTHENTICATION_FAILURE) == 0      # snmpEnableAuthenTraps disabled(2)
        assert "= INTEGER: 2" in agent.v2c("snmpget", ENABLE_AUTHEN_TRAPS, mib=False).out

        # Rotate: a new community (requests and the trap target), new keys for admin, and
        # authentication failures notified from now on.
        write_secret(tmp_path / "secrets" / "admin.auth", NEW_AUTH)
        write_secret(tmp_path / "secrets" / "admin.priv", NEW_PRIV)
        write_secret(tmp_path / "secrets" / "hb.key", NEW_HB_KEY)
        text = agent.config_path.read_text()
        text = text.replace('name = "public"', f'name = "{NEW_COMMUNITY}"')
        text = text.replace('community = "public"', f'community = "{NEW_COMMUNITY}"')
        text = text.replace('sys_location = "rack 7"', 'sys_location = "rack 7"\nauth_failure_traps = true')
        agent.config_path.write_text(text)
        agent.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        log = _wait_log(agent, "configuration reloaded")
        assert "reload refused" not in log and "heartbeat.key" in log
        assert ("SNMP credentials changed by reload: community 1 replaced; user admin: auth key, priv key "
                "changed; notification target trapd-v2c changed; auth_failure_traps false -> true") in log

        # The old ones are refused at once, the new ones work, on the same process.
        assert _refused(agent.v2c("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0"))
        assert _refused(agent.v3("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0"))
        r = agent.v2c("snmpget", f"{R}.1.1.1.0", community=NEW_COMMUNITY)
        assert r.rc == 0 and "itest" in r.out, r.text
        r = agent.v3("snmpset", HB_INTERVAL, "u", "2000", auth=NEW_AUTH, priv=NEW_PRIV, mib=False)
        assert r.rc == 0, r.text
        r = agent.reader("snmpget", f"{R}.1.1.1.0")                  # an unchanged user goes on
        assert r.rc == 0 and "itest" in r.out, r.text
        assert agent.proc.pid == pid and agent.proc.poll() is None  # type: ignore[union-attr]
        state_after = agent.v2c("snmpget", "-Oqv", CLUSTER_STATE, community=NEW_COMMUNITY)
        assert state_after.out == state_before.out, state_after.text
        role_after = agent.v2c("snmpget", "-Oqv", HEAD_STATE, community=NEW_COMMUNITY)
        assert role_after.out == role_before.out, role_after.text

        # The audit went to the NMS through the rotated target; the old community's use is
        # now notified as the standard authenticationFailure.
        trapd.wait_notification(CREDENTIALS_CHANGED, where=NEW_COMMUNITY)
        trapd.wait_notification(AUTHENTICATION_FAILURE, where=NEW_COMMUNITY)
        assert "= INTEGER: 1" in agent.v2c("snmpget", ENABLE_AUTHEN_TRAPS, community=NEW_COMMUNITY,
                                           mib=False).out

        # A flood of guesses: every one counted, none past the rate limit's burst (5 events,
        # all spent above) into the history or the log.
        count = f"{R}.1.13.1.0"                                   # haoscarSnmpAuthFailures
        before = int(agent.v2c("snmpget", "-Oqv", count, community=NEW_COMMUNITY).out.split()[-1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(200):
                s.sendto(_get_with_community("flood-guess"), ("127.0.0.1", agent.port))
        deadline = time.monotonic() + 10
        while int(agent.v2c("snmpget", "-Oqv", count, community=NEW_COMMUNITY).out.split()[-1]) < before + 200:
            assert time.monotonic() < deadline, "the flood was not counted"
            time.sleep(0.1)
        assert agent.log_text().count(" SNMP_AUTH_FAILURE ") == 5

        # The history has who and why, and the audit; nothing anywhere holds a secret.
        agent.stop()
        history = _history_text(agent.state_dir)
        assert "refused: unknown community" in history and "SNMP credentials changed" in history
        log = agent.log_text()
        assert "DEBUG" in log                                        # the level really was debug
        for secret in (AUTH_KEY, PRIV_KEY, READER_AUTH, READER_PRIV, NEW_COMMUNITY, NEW_AUTH, NEW_PRIV, WRONG_KEY,
                       HB_KEY, NEW_HB_KEY, SMTP_PASSWORD):
            assert secret not in log, f"{secret} is in the daemon's log"
            assert secret not in history, f"{secret} is in the event history"
        assert BUG_MARKER not in log, log
    finally:
        agent.stop()
        trapd.stop()
