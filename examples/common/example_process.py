"""An example program run as a child of its client script.

Echoes the program's output as it comes (prefixed with its name, long lines cut), waits for given lines
with deadlines, stops it with SIGTERM, and never leaves it running: every wait has a
deadline, and leaving the `with` block kills a program that is still there.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time


class CheckFailed(Exception):
    pass


def check(condition, message):
    """Fails the script with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def run_checks(main):
    """Runs `main()`, turning a failed check into a message and exit status 1."""
    try:
        main()
    except CheckFailed as failure:
        print(f"FAIL: {failure}", flush=True)
        sys.exit(1)
    print("PASS", flush=True)


class ExampleProcess:
    def __init__(self, argv, label):
        self.label = label
        self.output = []
        self._lines = queue.Queue()
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            shown = line if len(line) <= 240 else f"{line[:240]}... ({len(line)} characters)"
            print(f"  [{self.label}] {shown}", flush=True)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_line(self, pattern, timeout=10.0):
        """The match of the first new line matching the regular expression `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            check(left > 0, f"{self.label} printed no line matching {pattern!r} within {timeout} s")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            check(line is not None, f"{self.label} exited before printing {pattern!r}")
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, timeout=20.0):
        """Sends SIGTERM and returns the exit status; fails if the program outlives `timeout`."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout=20.0):
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise CheckFailed(f"{self.label} did not exit within {timeout} s")
        self._reader.join(timeout=5)
        return status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return False


def require_tools(*tools):
    """Fails with a hint when a client program the script needs is not installed."""
    import shutil
    missing = [tool for tool in tools if shutil.which(tool) is None]
    check(not missing, f"missing {', '.join(missing)}: run `source cmake/debian-deps.sh && "
                       f"loopbridge_install_deps \"${{loopbridge_example_packages[@]}}\"`")


def program_path():
    check(len(sys.argv) == 2 and os.access(sys.argv[1], os.X_OK),
          f"usage: {sys.argv[0]} PATH_TO_EXAMPLE_PROGRAM")
    return sys.argv[1]
