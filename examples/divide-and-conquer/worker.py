#!/usr/bin/env python3
"""The same worker on pyzmq: takes [id, ms], sleeps ms, reports [result, id, name].

    .venv/bin/python examples/divide-and-conquer/worker.py [--tasks tcp://localhost:5557]
        [--sink tcp://localhost:5558] [--name pyzmq-<pid>]
"""

import argparse
import os
import signal
import sys
import time

import zmq

parser = argparse.ArgumentParser()
parser.add_argument("--tasks", default="tcp://localhost:5557")
parser.add_argument("--sink", default="tcp://localhost:5558")
parser.add_argument("--name", default="pyzmq-%d" % os.getpid())
args = parser.parse_args()

context = zmq.Context()
tasks = context.socket(zmq.PULL)
tasks.connect(args.tasks)
sink = context.socket(zmq.PUSH)
# A result the sink never takes must not keep a stopped worker alive (libzmq waits for
# ever by default).
sink.setsockopt(zmq.LINGER, 1000)
sink.connect(args.sink)


def stop(signum, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, stop)

try:
    while True:
        task_id, ms = tasks.recv_multipart()
        time.sleep(int(ms) / 1000)
        print("%s task %s %s ms" % (args.name, task_id.decode(), ms.decode()), flush=True)
        sink.send_multipart([b"result", task_id, args.name.encode()])
except KeyboardInterrupt:
    pass
finally:
    tasks.close(0)
    sink.close()
    context.term()
sys.exit(0)
