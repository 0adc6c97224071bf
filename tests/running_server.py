"""`onebit serve` as the Python tests run it: on a port it picks itself, read back from its first lines."""

import os
import re
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("ONEBIT", os.path.join(ROOT, ".build", "debug", "onebit"))


class RunningServer:
    """`onebit serve --port 0 ARGS`, its base URL in `url`; `stop()` sends SIGTERM and returns the exit status."""

    def __init__(self, args: list, env: dict | None = None):
        self.process = subprocess.Popen(
            [BINARY, "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.url = None
        deadline = time.time() + 60
        while time.time() < deadline and self.url is None:
            line = self.process.stderr.readline()
            if not line:
                break
            match = re.search(r"serving \S+ on (http://\S+)", line)
            if match:
                self.url = match.group(1)
        assert self.url, "the server did not start"
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=30)
