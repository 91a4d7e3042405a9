#!/usr/bin/env python3
"""check_server.py KIND BINARY [ARGS...] - runs an example server on a free
loopback port, talks to it as a client would, then sends SIGINT and checks
that it exits 0 within 5 s. KIND: echo (a round trip of a short line and of
1 MiB, on two connections at once) or http (two keep-alive GET / requests).
Prints "server: OK" on success."""
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(min(1 << 16, n - len(data)))
        if not chunk:
            raise AssertionError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


def check_echo(port):
    a = socket.create_connection(("127.0.0.1", port), timeout=5)
    b = socket.create_connection(("127.0.0.1", port), timeout=5)
    a.sendall(b"hello rill\n")
    big = bytes(range(256)) * 4096  # 1 MiB
    b.sendall(big[: 1 << 19])
    assert recv_exactly(a, 11) == b"hello rill\n"
    b.sendall(big[1 << 19:])
    assert recv_exactly(b, len(big)) == big
    a.close()
    b.close()


def check_http(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    for _ in range(2):  # keep-alive: two requests on one connection
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        head, _, body = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        body += recv_exactly(s, 13 - len(body)) if len(body) < 13 else b""
        assert body == b"Hello, World!", body
    s.close()


def main():
    kind, binary, *args = sys.argv[1:]
    port = free_port()
    p = subprocess.Popen([binary, str(port), *args], stdout=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = p.stdout.readline().strip()
        assert line == f"listening on 127.0.0.1:{port}", line
        (check_echo if kind == "echo" else check_http)(port)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = p.wait(5)
        assert rc == 0, f"exit status {rc} after SIGINT"
        print(f"server: OK ({binary.rsplit('/', 1)[-1]} {' '.join(args)}: exit 0 "
              f"{time.monotonic() - t0:.3f} s after SIGINT)")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
