# Runs a moto server for one test process and dies with it.
#
# Started by test-support (src/moto.rs) as `python3 -c <this file>`. Tests may be
# killed without running any cleanup, so instead of relying on the parent to stop us,
# we poll our parent pid and exit as soon as it changes (we were re-parented).
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
    the code under test relies on (leases, optimistic updates)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Responses are small; reading the body inside the lock keeps a request atomic end to end.
            return [b"".join(self.app(environ, start_response))]


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
