#!/usr/bin/env python3
"""Sequence-numbered PUSH/PULL peer backed by pyzmq (libzmq), for the fault tests.

Usage: pyzmq_seq_peer.py <push|pull> <bind|connect> <address> [options-json [size [first]]]

Options are named as in zeromq.js, as for pyzmq_peer.py. Every message is one frame of
`size` bytes (default 64, at least 8): the sequence number as a big-endian uint64, then
zeros. A PUSH numbers its messages from `first` (default 0) up, one by one, in the order
libzmq accepts them. Times are CLOCK_MONOTONIC microseconds (Python's time.monotonic_ns(),
Node's process.hrtime.bigint(): the same clock), so the test can compare them with its own.

Line protocol (one command or event per line):
  peer -> test  ready <endpoint>        bound (endpoint = resolved address) or connecting
  test -> peer  start <rate> <burst>    push: send at <rate> msg/s from a token bucket of
                                        <burst> messages; a send that libzmq cannot take
                                        (high-water mark) waits, and waiting does not earn
                                        a burst beyond <burst> afterwards
  peer -> test  a <count> <t_us>        push: <count> messages accepted so far (the last
                                        one at t_us); written after every accepted send,
                                        before anything else, so a SIGKILL loses at most
                                        the report of the send in progress
  test -> peer  stop                    push: stop sending (what is queued still goes out)
  peer -> test  stopped <count>
  peer -> test  r <t_us> <ids>          pull: messages received in one wake-up at t_us;
                                        ids as comma-separated runs "a-b" or "a"
  test -> peer  pause                   pull: stop receiving (the application is busy)
  peer -> test  paused <t_us>
  test -> peer  resume                  pull: receive again
  peer -> test  resumed <t_us>
  peer -> test  d <t_us> <why>          a connection of the socket ended (libzmq's
                                        ZMQ_EVENT_DISCONNECTED, seen at t_us)
  test -> peer  state                   what the socket and this script see now, for a
  peer -> test  s <json>                failing test's diagnostics
  test -> peer  close                   close with linger 0 and exit 0 (EOF on stdin too)
"""

import json
import os
import struct
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from pyzmq_peer import StdinLines, apply_options, bind_or_connect, die, emit


def now_us():
    return time.monotonic_ns() // 1000


def runs(ids):
    """[3,4,5,9] -> "3-5,9" (arrival order kept; a run only grows upwards by one)."""
    out = []
    start = prev = None
    for i in ids:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = i
    if start is not None:
        out.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return ",".join(out)


def main(argv):
    if not 4 <= len(argv) <= 7:
        die("usage: pyzmq_seq_peer.py <push|pull> <bind|connect> <address> [options-json [size [first]]]")
    role, mode, address = argv[1], argv[2], argv[3]
    if role not in ("push", "pull") or mode not in ("bind", "connect"):
        die("bad role/mode %r %r" % (role, mode))
    options = json.loads(argv[4]) if len(argv) > 4 else {}
    size = int(argv[5]) if len(argv) > 5 else 64
    first = int(argv[6]) if len(argv) > 6 else 0
    if size < 8:
        die("size must be at least 8")

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH if role == "push" else zmq.PULL)
    apply_options(sock, role, options)
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    emit("ready " + bind_or_connect(sock, mode, address))

    stdin = StdinLines()
    poller = zmq.Poller()
    poller.register(0, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    padding = b"\0" * (size - 8)

    sending = False
    rate = 0.0
    burst = 1.0
    tokens = 0.0
    last = 0.0
    seq = first
    count = 0
    received = 0
    paused = False

    def finish():
        ctx.destroy(linger=0)
        os._exit(0)

    while True:
        want = zmq.POLLIN if role == "pull" and not paused else 0
        timeout = None
        if sending:
            t = time.monotonic()
            tokens = min(burst, tokens + (t - last) * rate)
            last = t
            if tokens >= 1:
                want = zmq.POLLOUT
            else:
                timeout = max(0.0, (1 - tokens) / rate * 1000)
        poller.register(sock, want)  # want == 0 unregisters
        events = dict(poller.poll(timeout))

        if events.get(0):
            for line in stdin.read_available():
                verb, _, rest = line.partition(" ")
                if verb == "start" and role == "push":
                    r, b = rest.split()
                    rate, burst = float(r), float(b)
                    sending, tokens, last = True, 1.0, time.monotonic()
                elif verb == "stop" and role == "push":
                    sending = False
                    emit("stopped %d" % count)
                elif verb == "pause" and role == "pull":
                    paused = True
                    emit("paused %d" % now_us())
                elif verb == "resume" and role == "pull":
                    paused = False
                    emit("resumed %d" % now_us())
                elif verb == "state":
                    ready = sock.getsockopt(zmq.EVENTS)
                    emit("s " + json.dumps({
                        "count": count, "received": received, "paused": paused, "sending": sending,
                        "readable": bool(ready & zmq.POLLIN), "writable": bool(ready & zmq.POLLOUT),
                    }))
                elif verb == "close":
                    finish()
                else:
                    die("unknown command %r" % line)
            if stdin.eof:
                finish()

        if events.get(monitor):
            while True:
                try:
                    event = recv_monitor_message(monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    emit("d %d disconnected" % now_us())

        if role == "pull" and events.get(sock, 0) & zmq.POLLIN:
            t = now_us()
            ids = []
            while True:
                try:
                    frame = sock.recv(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                if len(frame) != size:
                    die("message of %d bytes, expected %d" % (len(frame), size))
                ids.append(struct.unpack_from(">Q", frame)[0])
            received += len(ids)
            if ids:
                emit("r %d %s" % (t, runs(ids)))

        if role == "push" and sending and events.get(sock, 0) & zmq.POLLOUT:
            t = time.monotonic()
            tokens = min(burst, tokens + (t - last) * rate)
            last = t
            while tokens >= 1:
                try:
                    sock.send(struct.pack(">Q", seq) + padding, zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                seq += 1
                count += 1
                tokens -= 1
                emit("a %d %d" % (count, now_us()))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except BrokenPipeError:
        os._exit(0)
