"""A libzmq (pyzmq) CURVE peer for engine/tests/curve_interop.rs.

    curve_peer.py push|pull bind|connect ENDPOINT server|client SECRET_Z85 [SERVER_PUBLIC_Z85] COUNT

Binds or connects one PUSH or PULL socket with CURVE (as the server, or as a client of the
server whose public key is given), heartbeating every 100 ms so that libzmq's PINGs and
PONGs cross the boxes too. A bound socket prints "ENDPOINT <resolved>" first.

push: sends COUNT messages of the shared pattern (see message()), then a 1 MiB one, then
      waits for a line on stdin before it exits.
pull: receives them, checks each against the pattern, prints "OK" or "BAD <why>".
Exits 0 on success; a receive waits at most 10 s.
"""
import sys

import zmq


def message(i):
    """The i-th message: multipart, with empty frames."""
    return [str(i).encode(), b"", bytes([i % 256]) * (i % 50)]


BIG = bytes((j * 7) % 251 for j in range(1 << 20))


def main():
    kind, how, endpoint, role, secret = sys.argv[1:6]
    rest = sys.argv[6:]
    server_public = rest.pop(0) if role == "client" else None
    count = int(rest[0])
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH if kind == "push" else zmq.PULL)
    s.linger = -1  # the test bounds the wait (and kills us)
    s.rcvtimeo = 10000
    s.heartbeat_ivl = 100
    s.heartbeat_timeout = 2000
    if role == "null":
        pass
    elif role == "server":
        s.curve_server = True
        s.curve_secretkey = secret.encode()
    else:
        s.curve_secretkey = secret.encode()
        s.curve_publickey = zmq.curve_public(secret.encode())
        s.curve_serverkey = server_public.encode()
    if how == "bind":
        s.bind(endpoint)
        print("ENDPOINT", s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    else:
        s.connect(endpoint)
    if kind == "push":
        for i in range(count):
            s.send_multipart(message(i))
        s.send_multipart([b"big", BIG])
        # Stay until the test says it has everything: exiting with its heartbeats unread
        # would reset the connection, and a reset discards what it had not read yet.
        sys.stdin.readline()
        s.close()
        ctx.term()
        print("OK", flush=True)
        return 0
    try:
        for i in range(count):
            got = s.recv_multipart()
            if got != message(i):
                print("BAD message", i, repr(got[:3])[:200], flush=True)
                return 1
        got = s.recv_multipart()
        if got != [b"big", BIG]:
            print("BAD big message", flush=True)
            return 1
    except zmq.Again:
        print("BAD timeout", flush=True)
        return 1
    print("OK", flush=True)
    s.close(linger=0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
