"""A tiny TCP service for the recovery tests: accepts connections on HOST:PORT (HOST
127.0.0.1 unless given) and closes them, and writes its pid to PIDFILE once it listens.
Started and restarted by the daemon.

    python3 tcp_service.py PORT PIDFILE [HOST]
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def main() -> None:
    port, pidfile = int(sys.argv[1]), sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(16)
    with open(pidfile + ".tmp", "w") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(pidfile + ".tmp", pidfile)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        conn, _ = server.accept()
        conn.close()


if __name__ == "__main__":
    main()
