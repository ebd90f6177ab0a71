# Runs a moto server for one test process and dies with it.
#
# Started by test-support (src/moto.rs) as `python3 -c <this file>`. Tests may be
# killed without running any cleanup, so instead of relying on the parent to stop us,
# we poll our parent pid and exit as soon as it changes (we were re-parented).
import logging
import os
import sys
import time

from moto.server import ThreadedMotoServer

parent = os.getppid()
# Port 0: the kernel picks a free port while binding, so no other process can race us.
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
server.start()
print("MOTO READY %d" % server.get_host_and_port()[1], flush=True)

while os.getppid() == parent:
    time.sleep(0.5)
# Daemon threads and all: just go.
os._exit(0)
