#!/usr/bin/env python3
"""Foreign PUSH/PULL peer backed by pyzmq (bundled libzmq), driven over stdio.

Usage: pyzmq_peer.py <push|pull> <bind|connect> <address> [options-json]

Line protocol (one command or event per line, UTF-8):
  peer -> test  ready <endpoint>           bind done (endpoint = resolved address,
                                           real port) or connect started
                                           (endpoint = address as given; the
                                           connection may not be up yet)
  test -> peer  send <json [base64,...]>   push only: send one multipart message
  peer -> test  sent <n>                   push only: message n (1-based) was
                                           accepted by libzmq
  peer -> test  recv <json [base64,...]>   pull only: one received message
  test -> peer  close                      close socket (lingering), exit 0
Diagnostics go to stderr; fatal problems exit non-zero (2 usage/protocol,
3 bind/connect failed). EOF on stdin means the test process is gone, so the
peer drops whatever is still queued (linger 0) and exits 0 immediately.

A single-threaded poll loop over the socket and stdin is used instead of
blocking calls so that stdin EOF is noticed even while a send is stuck on the
high-water mark or no peer is connected yet.
"""

import base64
import json
import os
import sys

import zmq

# The peer sets an explicit linger so that `close` flushes queued messages
# without risking an endless hang when the other side never shows up
# (libzmq's default of -1 would block context termination forever).
DEFAULT_LINGER_MS = 5000

# Option names follow zeromq.js so one options object works for both peers.
OPTIONS = {
    "linger": zmq.LINGER,
    "sendHighWaterMark": zmq.SNDHWM,
    "receiveHighWaterMark": zmq.RCVHWM,
    "immediate": zmq.IMMEDIATE,
    "conflate": zmq.CONFLATE,
    "reconnectInterval": zmq.RECONNECT_IVL,
    "reconnectMaxInterval": zmq.RECONNECT_IVL_MAX,
    "connectTimeout": zmq.CONNECT_TIMEOUT,
    "handshakeInterval": zmq.HANDSHAKE_IVL,
    "heartbeatInterval": zmq.HEARTBEAT_IVL,
    "heartbeatTimeout": zmq.HEARTBEAT_TIMEOUT,
    "heartbeatTimeToLive": zmq.HEARTBEAT_TTL,
    "maxMessageSize": zmq.MAXMSGSIZE,
    "backlog": zmq.BACKLOG,
    "sendBufferSize": zmq.SNDBUF,
    "receiveBufferSize": zmq.RCVBUF,
    "tcpKeepalive": zmq.TCP_KEEPALIVE,
    "tcpKeepaliveCount": zmq.TCP_KEEPALIVE_CNT,
    "tcpKeepaliveIdle": zmq.TCP_KEEPALIVE_IDLE,
    "tcpKeepaliveInterval": zmq.TCP_KEEPALIVE_INTVL,
    "tcpMaxRetransmitTimeout": zmq.TCP_MAXRT,
    "ipv6": zmq.IPV6,
    # CURVE, with keys as 40-character Z85 strings (libzmq takes them as is).
    "curveServer": zmq.CURVE_SERVER,
    "curveSecretKey": zmq.CURVE_SECRETKEY,
    "curvePublicKey": zmq.CURVE_PUBLICKEY,
    "curveServerKey": zmq.CURVE_SERVERKEY,
    "zapDomain": zmq.ZAP_DOMAIN,
}


def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def die(message, code=2):
    sys.stderr.write("pyzmq_peer: %s\n" % message)
    sys.stderr.flush()
    os._exit(code)


def libzmq_address(address):
    # Tests may spell "any free port" the Node way (:0); libzmq's own spelling
    # is :* and only that one is documented.
    if address.startswith("tcp://") and address.endswith(":0"):
        return address[:-2] + ":*"
    return address


# zeromq.js only exposes the send-side options on Push and the receive-side
# ones on Pull; rejecting them here too keeps both peers interchangeable.
ROLE_ONLY = {
    "sendHighWaterMark": "push",
    "sendBufferSize": "push",
    "receiveHighWaterMark": "pull",
    "receiveBufferSize": "pull",
}


def apply_options(sock, role, options):
    for name, value in options.items():
        if name not in OPTIONS:
            die("unsupported option %r (known: %s)" % (name, ", ".join(sorted(OPTIONS))))
        if ROLE_ONLY.get(name, role) != role:
            die("option %r does not apply to a %s socket" % (name, role))
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, str):
            value = value.encode("ascii")
        try:
            sock.setsockopt(OPTIONS[name], value)
        except (zmq.ZMQError, TypeError) as exc:
            die("cannot set %s=%r: %s" % (name, value, exc))


def encode(frames):
    return json.dumps([base64.b64encode(f).decode("ascii") for f in frames],
                      separators=(",", ":"))


def decode(payload):
    try:
        frames = json.loads(payload)
        if not isinstance(frames, list) or not frames:
            raise ValueError("expected a non-empty JSON array")
        return [base64.b64decode(f, validate=True) for f in frames]
    except (ValueError, TypeError) as exc:
        die("bad frames %r: %s" % (payload, exc))


def bind_or_connect(sock, mode, address):
    """Binds or connects `sock`; returns the endpoint (a bound tcp port resolved). Exits
    with status 3 if libzmq refuses."""
    try:
        if mode == "bind":
            sock.bind(libzmq_address(address))
            return sock.getsockopt_string(zmq.LAST_ENDPOINT)
        sock.connect(address)
        return address
    except zmq.ZMQError as exc:
        die("%s %s failed: %s" % (mode, address, exc), 3)


class StdinLines:
    """Non-blocking line reader over fd 0 (Python's buffered stdin would hide
    pending data from poll)."""

    def __init__(self):
        self.buf = b""
        self.eof = False

    def read_available(self):
        chunk = os.read(0, 65536)
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [l.decode("utf-8").rstrip("\r") for l in lines if l.strip()]


def main(argv):
    if len(argv) not in (4, 5):
        die("usage: pyzmq_peer.py <push|pull> <bind|connect> <address> [options-json]")
    role, mode, address = argv[1], argv[2], argv[3]
    if role not in ("push", "pull") or mode not in ("bind", "connect"):
        die("bad role/mode %r %r" % (role, mode))
    try:
        options = json.loads(argv[4]) if len(argv) == 5 else {}
    except ValueError as exc:
        die("bad options json: %s" % exc)
    if not isinstance(options, dict):
        die("options must be a JSON object")

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH if role == "push" else zmq.PULL)
    close_linger = options.get("linger", DEFAULT_LINGER_MS)
    apply_options(sock, role, options)

    emit("ready " + bind_or_connect(sock, mode, address))

    stdin = StdinLines()
    commands = []  # received but not yet executed, in arrival order
    sent = 0
    poller = zmq.Poller()
    poller.register(0, zmq.POLLIN)

    while True:
        # Only ask for POLLOUT when a send is actually waiting, otherwise an
        # idle writable PUSH socket would spin the loop.
        want = 0
        if role == "pull":
            want = zmq.POLLIN
        elif commands and commands[0].startswith("send "):
            want = zmq.POLLOUT
        poller.register(sock, want)  # want == 0 unregisters

        events = dict(poller.poll())

        if events.get(0):
            commands.extend(stdin.read_available())
            if stdin.eof:
                # Nobody is listening any more; don't linger on anything.
                sock.close(linger=0)
                ctx.term()
                os._exit(0)

        if role == "pull" and events.get(sock, 0) & zmq.POLLIN:
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                emit("recv " + encode(frames))

        # Commands run strictly in order: a `close` queued behind a blocked
        # `send` must not overtake it.
        while commands:
            line = commands[0]
            verb, _, rest = line.partition(" ")
            if verb == "send":
                if role != "push":
                    die("send on a pull peer")
                frames = decode(rest)
                try:
                    # libzmq checks the high-water mark only on the first
                    # frame, so a multipart send is all-or-nothing here.
                    sock.send_multipart(frames, zmq.NOBLOCK)
                except zmq.Again:
                    break
                commands.pop(0)
                sent += 1
                emit("sent %d" % sent)
            elif verb == "close":
                sock.close(linger=close_linger)
                ctx.term()
                sys.stdout.flush()
                os._exit(0)
            else:
                die("unknown command %r" % line)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except BrokenPipeError:
        # The test went away mid-write; that is the same as stdin closing.
        os._exit(0)
