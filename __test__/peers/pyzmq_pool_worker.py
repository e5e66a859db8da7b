"""A pool worker written against the documented frames only, with pyzmq (libzmq):
job [id, *payload] -> result [id, b"ok", *reply]; a hello ["", "zeropipe/hello", peer] is
answered with its concurrency (1). Replies [b"pyzmq", payload upper-cased].
argv: jobs_endpoint results_endpoint"""
import sys

import zmq

ctx = zmq.Context()
jobs = ctx.socket(zmq.PULL)
jobs.connect(sys.argv[1])
results = ctx.socket(zmq.PUSH)
results.connect(sys.argv[2])
while True:
    frames = jobs.recv_multipart()
    if frames[0] == b"":
        if frames[1:2] == [b"zeropipe/hello"]:
            results.send_multipart([b"", b"zeropipe/hello", frames[2], b"1"])
        continue
    job_id, payload = frames[0], frames[1:]
    results.send_multipart([job_id, b"ok", b"pyzmq", *[p.upper() for p in payload]])
