#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/, from the wire layouts below.

The seeds are committed; this script is how they were made and how to change them. It
rewrites only the files it names (files other tools drop there are left alone, but the
fuzz scripts never write into fuzz/corpus: they grow a scratch copy).

Stream targets (decoder, handshake) take a control byte, chunk sizes, then the stream: see
fuzz/src/lib.rs.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def long_frame(body, more=False):
    """A frame with an 8-byte size even when 1 would do (legal, and libzmq accepts it)."""
    return bytes([(1 if more else 0) | 2]) + struct.pack(">Q", len(body)) + body


def command(name, data=b""):
    return frame(bytes([len(name)]) + name + data, command=True)


def prop(name, value):
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def ready(*props):
    return command(b"READY", b"".join(props))


def ready_type(socket_type):
    return ready(prop(b"Socket-Type", socket_type))


def ping(ttl=0, context=b""):
    return command(b"PING", struct.pack(">H", ttl) + context)


def message(*frames):
    return b"".join(frame(f, more=i < len(frames) - 1) for i, f in enumerate(frames))


def greeting(major=3, minor=1, mechanism=b"NULL", as_server=0):
    g = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([major, minor])
    g += mechanism.ljust(20, b"\x00") + bytes([as_server]) + b"\x00" * 31
    assert len(g) == 64
    return g


def stream_input(stream, chunks=(), options=0):
    """Control byte (options << 4 | number of chunk sizes), chunk sizes (n means n + 1)."""
    assert len(chunks) <= 15 and options < 16
    return bytes([options << 4 | len(chunks)]) + bytes(c - 1 for c in chunks) + stream


DECODER = {
    "empty": stream_input(b""),
    "short-message": stream_input(message(b"hello")),
    "empty-frame": stream_input(message(b"")),
    "multipart": stream_input(message(b"", b"a", b"", b"bc", b""), chunks=[3, 1]),
    "long-frame": stream_input(message(b"\x07" * 300, b"x"), chunks=[200, 9]),
    "long-header-small-size": stream_input(long_frame(b"abc")),
    "frame-255-and-256": stream_input(message(b"\x01" * 255) + message(b"\x02" * 256)),
    "ready-push": stream_input(ready_type(b"PUSH")),
    "ready-many-props": stream_input(
        ready(prop(b"Socket-Type", b"PULL"), prop(b"Identity", b""), prop(b"X-Big", b"\x09" * 300))
    ),
    "ping-between-frames": stream_input(
        frame(b"a", more=True) + ping(300, b"ctx") + frame(b"b"), chunks=[1, 2, 5]
    ),
    "ping-long-context": stream_input(ping(10, b"c" * 40)),
    "pong-error-unknown": stream_input(
        command(b"PONG", b"ctx") + command(b"ERROR", b"\x05go on") + command(b"SUBSCRIBE", b"topic")
    ),
    "mixed": stream_input(
        ready_type(b"PUSH")
        + message(b"one")
        + message(b"", b"two", b"\x05" * 300, b"")
        + ping(1, b"p")
        + message(b"\x06" * 256),
        chunks=[7, 64, 1],
    ),
    "more-run": stream_input(b"\x01\x00" * 40 + b"\x00\x00"),
    "huge-declared-size": stream_input(b"\x02\x00\x00\x01\x00\x00\x00\x00\x00" + b"\x00" * 16),
    "top-bit-size": stream_input(b"\x02\x80\x00\x00\x00\x00\x00\x00\x00"),
    "oversized-command": stream_input(b"\x06" + struct.pack(">Q", 65537)),
    "command-with-more": stream_input(b"\x05\x05\x04PING"),
    "reserved-flags": stream_input(b"\x08\x00"),
    "ready-overrun": stream_input(b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x05PUSH"),
}

# Options nibble: bits 0-1 maxMessageSize (-1, 0, 1 KiB, 256 MiB), bits 2-3 duplex size.
HANDSHAKE = {
    "push-peer": stream_input(greeting() + ready_type(b"PUSH")),
    "pull-peer": stream_input(greeting() + ready_type(b"PULL"), options=0b1110),
    "push-peer-bytewise": stream_input(greeting() + ready_type(b"PUSH"), chunks=[1]),
    "push-peer-then-data": stream_input(
        greeting() + ready_type(b"PUSH") + message(b"first", b"frame") + b"\x00\x0asec",
        chunks=[11, 53, 30],
        options=0b0110,
    ),
    "pull-peer-as-server-minor0": stream_input(
        greeting(minor=0, as_server=1) + ready(prop(b"Identity", b"id"), prop(b"socket-type", b"PULL"))
    ),
    "incompatible-type": stream_input(greeting() + ready_type(b"REQ"), options=0b0100),
    "no-socket-type": stream_input(greeting() + ready(prop(b"Identity", b""))),
    "error-instead-of-ready": stream_input(greeting() + command(b"ERROR", b"\x07go away")),
    "ping-before-ready": stream_input(greeting() + ping()),
    "data-before-ready": stream_input(greeting() + b"\x03\x00\x00\x00\x00\x00\x01\x00\x00"),
    "plain-mechanism": stream_input(greeting(mechanism=b"PLAIN") + ready_type(b"PUSH")),
    "zmtp2": stream_input(greeting(major=2)[:11]),
    "http": stream_input(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    "greeting-only": stream_input(greeting(), chunks=[20]),
    "truncated-greeting": stream_input(greeting()[:40]),
    # A READY declaring the largest command size allowed, cut short: the reads must not
    # reserve what it declares.
    "big-ready-cut-short": stream_input(
        greeting() + b"\x06" + struct.pack(">Q", 65536) + b"\x05READY" + prop(b"Socket-Type", b"PUSH")
    ),
}

GREETING = {
    "ours": greeting(),
    "ours-as-server": greeting(as_server=1),
    "minor0": greeting(minor=0),
    "major4": greeting(major=4, minor=9),
    "plain": greeting(mechanism=b"PLAIN"),
    "null-then-garbage": greeting(mechanism=b"NULL\x00X"),
    "escaped-mechanism": greeting(mechanism=b"NU\x1b[2J\xff"),
    "zmtp2": greeting(major=2),
    "byte9-bit0": b"\xff" + b"\x00" * 8 + b"\x01\x03",
    "byte9-bit0-clear": b"\xff" + b"\x00" * 8 + b"\x7e\x03",
    "http": b"GET / HTTP/1.1\r\n",
    "signature-only": greeting()[:10],
    "greeting-plus-ready": greeting() + ready_type(b"PUSH"),
}

ENDPOINT = {
    "tcp-ipv4": b"tcp://127.0.0.1:5555",
    "tcp-ipv6": b"tcp://[::1]:5555",
    "tcp-ipv6-any-ephemeral": b"tcp://[::]:*",
    "tcp-any": b"tcp://*:0",
    "tcp-name-trailing-dot": b"tcp://my-host.example.com.:80",
    "tcp-leading-zeros": b"tcp://localhost:007",
    "tcp-no-port": b"tcp://127.0.0.1",
    "tcp-ipv6-unbracketed": b"tcp://::1:5555",
    "tcp-source": b"tcp://eth0;127.0.0.1:5555",
    "tcp-port-range": b"tcp://127.0.0.1:65536",
    "tcp-bad-host": b"tcp://bad host:5555",
    "ipc-abs": b"ipc:///tmp/a.sock",
    "ipc-rel": b"ipc://rel/a.sock",
    "ipc-wildcard": b"ipc://*",
    "ipc-abstract": b"ipc://@name",
    "ipc-empty-abstract": b"ipc://@",
    "ipc-too-long": b"ipc:///" + b"a" * 107,
    "inproc": b"inproc://a/b:c",
    "inproc-empty": b"inproc://",
    "udp": b"udp://127.0.0.1:5555",
    "no-scheme": b"127.0.0.1:5555",
    "unicode": "tcp://\u00e9t\u00e9:1".encode(),
}


def main():
    for target, seeds in [
        ("decoder", DECODER),
        ("handshake", HANDSHAKE),
        ("greeting", GREETING),
        ("endpoint", ENDPOINT),
    ]:
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
