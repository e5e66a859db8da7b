"""A libzmq (pyzmq) CURVE peer for the authentication tests in curve_interop.rs.

    curve_auth_peer.py zap-server STATUS SECRET_Z85
        binds a CURVE PULL server on tcp://127.0.0.1:* with a ZAP handler answering STATUS
        to every request; prints "ENDPOINT <resolved>", then "ZAP <client key z85>" for each
        request, until stdin closes.
    curve_auth_peer.py client ENDPOINT SECRET_Z85 SERVER_PUBLIC_Z85
        connects a CURVE PUSH client and prints the first handshake verdict its monitor
        reports: "SUCCEEDED", "FAILED_AUTH <status>" or "FAILED_PROTOCOL"; "NONE" after 10 s.
"""
import sys
import threading

import zmq
import zmq.utils.z85
from zmq.utils.monitor import recv_monitor_message


def zap_server(status, secret):
    ctx = zmq.Context.instance()
    zap = ctx.socket(zmq.REP)
    zap.bind("inproc://zeromq.zap.01")

    def handler():
        while True:
            try:
                req = zap.recv_multipart()
            except zmq.ContextTerminated:
                return
            version, request_id, domain, address, identity, mechanism = req[:6]
            key = req[6]
            print("ZAP", zmq.utils.z85.encode(key).decode(), flush=True)
            zap.send_multipart([version, request_id, status.encode(), b"reason", b"user", b""])

    threading.Thread(target=handler, daemon=True).start()
    s = ctx.socket(zmq.PULL)
    s.curve_server = True
    s.curve_secretkey = secret.encode()
    s.zap_domain = b"interop"
    s.bind("tcp://127.0.0.1:*")
    print("ENDPOINT", s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    sys.stdin.readline()
    s.close(linger=0)
    return 0


def client(endpoint, secret, server_public):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.PUSH)
    s.linger = 0
    s.curve_secretkey = secret.encode()
    s.curve_publickey = zmq.curve_public(secret.encode())
    s.curve_serverkey = server_public.encode()
    mon = s.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_SUCCEEDED
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    )
    mon.rcvtimeo = 10000
    s.connect(endpoint)
    try:
        ev = recv_monitor_message(mon)
    except zmq.Again:
        print("NONE", flush=True)
        return 0
    if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        print("SUCCEEDED", flush=True)
    elif ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        print("FAILED_AUTH", ev["value"], flush=True)
    else:
        print("FAILED_PROTOCOL", flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "zap-server":
        sys.exit(zap_server(sys.argv[2], sys.argv[3]))
    sys.exit(client(sys.argv[2], sys.argv[3], sys.argv[4]))
