# Runs a moto server for one test process and dies with it.
#
# Started by test-support (src/moto.rs) as `python3 -c <this file>`. Tests may be
# killed without running any cleanup, so instead of relying on the parent to stop us,
# we poll our parent pid and exit as soon as it changes (we were re-parented).
import json
import logging
import os
import sys
import time

import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


class OneRequestAtATime:
    """DynamoDB applies each conditional write atomically; moto's threaded server checks and writes without a
    lock, so two concurrent conditional writes can both succeed. Serialising requests restores the guarantee
    the code under test relies on (leases, optimistic updates).

    Being serial, it also knows how long moto spent serving requests: `GET /__guard/busy` answers the totals so
    far, which the benchmarks subtract from a cold start to tell moto's time from the code's."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.busy_seconds = 0.0
        self.requests = 0

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__guard/busy":
            with self.lock:
                body = json.dumps({"busy_ms": self.busy_seconds * 1000.0, "requests": self.requests}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with self.lock:
            started = time.perf_counter()
            # Responses are small; reading the body inside the lock keeps a request atomic end to end.
            body = b"".join(self.app(environ, start_response))
            self.busy_seconds += time.perf_counter() - started
            self.requests += 1
            return [body]


parent = os.getppid()
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
# Port 0: the kernel picks a free port while binding, so no other process can race us.
server = make_server("127.0.0.1", 0, OneRequestAtATime(DomainDispatcherApplication(create_backend_app)), threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("MOTO READY %d" % server.server_address[1], flush=True)

while os.getppid() == parent:
    time.sleep(0.5)
# Daemon threads and all: just go.
os._exit(0)
