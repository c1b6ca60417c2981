"""Run inside a private network namespace (see test_snat.py): its own loopback and its
own ip_local_port_range, so exhausting source ports touches nothing on the host.

Usage: python snat_scenario.py N_SNAT_ADDRESSES N_CLIENTS  -> one JSON document on stdout.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ocsscale.engine.client import AdminClientError, call  # noqa: E402

VIP, SERVER, PORT = "127.0.10.1", "127.0.21.1", 16501
SNAT = ["127.0.30.1", "127.0.30.2", "127.0.30.3"]


def backend(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.sendall(b"fe1\n")  # and keep it open: the point is to hold source ports


def client(i: int) -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 50000 + i))  # explicit port: clients must not use the tiny range
    s.settimeout(5)
    s.connect((VIP, PORT))
    try:
        data = s.recv(4)
    except TimeoutError:
        return "hang"
    except ConnectionResetError:
        return "closed"
    finally:
        CLIENTS.append(s)
    return "ok" if data == b"fe1\n" else "closed"


CLIENTS: list[socket.socket] = []


def main() -> None:
    n_snat, n_clients = int(sys.argv[1]), int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((SERVER, PORT))
    listener.listen(64)
    threading.Thread(target=backend, args=(listener,), daemon=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="ocsscale-snat-"))
    sock_path = str(tmp / "admin.sock")
    (tmp / "farm.yaml").write_text(
        f"farm: snat\nvip: [{VIP}]\nports: [{PORT}]\n"
        f"servers:\n  - {{name: fe1, address: {SERVER}}}\n"
        f"snat: {{addresses: [{', '.join(SNAT[:n_snat])}]}}\n"
        f"admin: {{socket: {sock_path}}}\n"
        "timeouts: {hard_stop_after: 0}\n"  # its held sessions need no grace at stop
    )
    engine = subprocess.Popen(
        [sys.executable, "-m", "ocsscale.engine", "serve", "--farm", str(tmp / "farm.yaml")],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            try:
                call(sock_path, "GET", "/status")
                break
            except AdminClientError:
                time.sleep(0.02)
        results = [client(i) for i in range(n_clients)]
        status = call(sock_path, "GET", "/status")
        events = call(sock_path, "GET", "/events")["events"]
        print(
            json.dumps(
                {
                    "results": results,
                    "snat": status["snat"],
                    "active": status["active"],
                    "events": [e["kind"] for e in events],
                }
            )
        )
    finally:
        engine.terminate()
        engine.wait(10)


if __name__ == "__main__":
    main()
