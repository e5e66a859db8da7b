#!/usr/bin/env python3
"""A pyzmq (libzmq) CURVE server PULL whose ZAP handler answers every client with one status.

Usage: pyzmq_zap_server.py <bind-address> <server-secret-z85> <status>

Prints `ready <endpoint>` once bound, then `zap <client-public-z85>` for each ZAP request
it answered, and `recv <n>` for each message received. Exits 0 on stdin EOF or a `close`
line. The ZAP handler is a plain REP socket on inproc://zeromq.zap.01 (rfc 27), answering
with `status` (e.g. 400 to deny), so the test sees exactly what libzmq sends on a denial.
"""

import sys

import zmq
from zmq.utils import z85


def main():
    address, secret, status = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = zmq.Context()
    zap = ctx.socket(zmq.REP)
    zap.linger = 0
    zap.bind("inproc://zeromq.zap.01")
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.curve_server = True
    pull.curve_secretkey = secret.encode()
    endpoint = address
    if address.startswith("tcp://") and address.endswith(":0"):
        endpoint = address[:-2] + ":*"
    pull.bind(endpoint)
    sys.stdout.write("ready %s\n" % pull.getsockopt_string(zmq.LAST_ENDPOINT))
    sys.stdout.flush()
    poller = zmq.Poller()
    poller.register(zap, zmq.POLLIN)
    poller.register(pull, zmq.POLLIN)
    poller.register(sys.stdin, zmq.POLLIN)
    received = 0
    while True:
        events = dict(poller.poll())
        if zap in events:
            # version, request id, domain, address, identity, mechanism, client key
            frames = zap.recv_multipart()
            key = z85.encode(frames[6]).decode() if len(frames) > 6 else ""
            zap.send_multipart([b"1.0", frames[1], status.encode(), b"denied" if status != "200" else b"OK", b"user" if status == "200" else b"", b""])
            sys.stdout.write("zap %s\n" % key)
            sys.stdout.flush()
        if pull in events:
            pull.recv_multipart()
            received += 1
            sys.stdout.write("recv %d\n" % received)
            sys.stdout.flush()
        if sys.stdin.fileno() in events or sys.stdin in events:
            line = sys.stdin.readline()
            if not line or line.strip() == "close":
                break
    pull.close()
    zap.close()
    ctx.term()


if __name__ == "__main__":
    main()
