"""Who may log in to the panel: the users of the configuration, kept current.

The users file is read at start by the configuration loader (a secret file: mode 0600,
owned by root or the daemon's user). Afterwards the panel looks at the file again,
off the event loop, at a login and at most every `RECHECK_S` on requests: a user added
or removed with `haoscar-snmp web-user` counts without a restart, and a removed user's
sessions end at their next request. A file that can no longer be used (wrong mode,
bad line) logs an error and leaves only the inline users: nobody logs in from a file
that may have been tampered with.

Password checks run scrypt in a worker thread, one at a time (it costs 32 MiB and
about 0.1 s), so a login flood costs the daemon one CPU at most, never the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from haoscar_snmp.config.secretfiles import SecretFileError, read_secret_file
from haoscar_snmp.config.webusers import DUMMY_HASH, UsersFileError, WebUser, parse_users, verify_password
from haoscar_snmp.core.clock import Clock

log = logging.getLogger(__name__)

RECHECK_S = 5.0


class UserTable:
    def __init__(self, inline: tuple[WebUser, ...], file_users: tuple[WebUser, ...], path: Path | None,
                 clock: Clock) -> None:
        self.inline = inline
        self.path = path
        self.clock = clock
        self._file_users = file_users
        self._stamp = self._stat()
        self._checked = clock.monotonic()
        self._hashing = asyncio.Semaphore(1)

    def get(self, name: str) -> WebUser | None:
        for user in (*self.inline, *self._file_users):
            if user.name == name:
                return user
        return None

    def _stat(self) -> tuple[int, int, int, int] | None:
        if self.path is None:
            return None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino, info.st_mode

    def _reread(self) -> None:
        """In a worker thread: read the file again if it changed."""
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        assert self.path is not None
        try:
            users = parse_users(read_secret_file(self.path).decode("utf-8"))
        except (SecretFileError, UsersFileError, UnicodeDecodeError) as error:
            log.error("web panel: the users file cannot be used (%s): only the configuration's inline "
                      "users can log in", error)
            users = ()
        inline = {user.name for user in self.inline}
        self._file_users = tuple(user for user in users if user.name not in inline)
        log.info("web panel: users file %s read again: %d user(s)", self.path, len(self._file_users))

    async def refresh(self, *, force: bool = False) -> None:
        """Look at the users file again (at most every RECHECK_S unless `force`)."""
        now = self.clock.monotonic()
        if self.path is None or (not force and now - self._checked < RECHECK_S):
            return
        self._checked = now
        await asyncio.to_thread(self._reread)

    async def authenticate(self, name: str, password: str) -> WebUser | None:
        """The user if the password is right; an unknown name costs as long as a wrong password."""
        await self.refresh(force=True)
        user = self.get(name)
        async with self._hashing:
            ok = await asyncio.to_thread(verify_password, password, user.hash if user else DUMMY_HASH)
        return user if ok and user is not None else None
