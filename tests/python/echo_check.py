"""ctest echo_server_python*: runs examples/echo_server.py PORT [FLAGS] (rill
streams by default; --protocol --rill / --streams --rill: asyncio's code on
rill's loop) as a program: waits for its "listening on 127.0.0.1:PORT" line, echoes a few
messages over 3 connections, then checks it exits 0 on SIGINT and on SIGTERM."""
import os
import signal
import socket
import subprocess
import sys
import time

script = sys.argv[1]
flags = sys.argv[2:] or ["--rill-streams"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(sig):
    port = free_port()
    p = subprocess.Popen([sys.executable, script, str(port)] + flags,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        if line != f"listening on 127.0.0.1:{port}":
            sys.exit(f"echo: FAILED: first line {line!r}")
        conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        for i, c in enumerate(conns):
            msg = f"message {i}\n".encode() * 100
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
            if got != msg:
                sys.exit(f"echo: FAILED: connection {i} got {len(got)} bytes back")
            c.close()
        time.sleep(0.1)
        p.send_signal(sig)
        rc = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if rc != 0:
        sys.exit(f"echo: FAILED: exit status {rc} after {signal.Signals(sig).name}")
    print(f"echo: {signal.Signals(sig).name} -> exit 0")


check(signal.SIGINT)
check(signal.SIGTERM)
print("echo: OK")
