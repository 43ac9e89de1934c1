#!/usr/bin/env python3
"""Lists every message text written into loopbridge's sources: the string given to each of
its error types and each context given to its error handler, adjacent literals joined, one
per line. tests/messages/messages_test.cpp reads the list (the messages_test target's build
writes it) and checks each text says each thing once, as it does for the messages it
provokes.

Usage: message_literals.py OUTPUT SOURCE_DIR...
"""

import os
import re
import sys

ERRORS = ("TaskCancelled", "LoopStopped", "TaskAbandoned", "DeadlockError", "InvalidHandle", "InvalidState",
          "InvalidArgument", "Timeout", "HostNotWaiting", "QueueFull", "BackendUnavailable")
LITERALS = r'((?:"(?:[^"\\\n]|\\.)*"\s*)+)'  # one or more adjacent string literals
PATTERNS = [re.compile(r"\b(?:" + "|".join(ERRORS) + r")\(\s*" + LITERALS),
            re.compile(r"\breport_error\((?:[^;]*?),\s*" + LITERALS + r"\)")]


def texts(source):
    for pattern in PATTERNS:
        for match in pattern.finditer(source):
            yield "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', match.group(1)))


def main():
    out, roots = sys.argv[1], sys.argv[2:]
    found = set()
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                if name.endswith((".cpp", ".hpp")):
                    with open(os.path.join(directory, name), encoding="utf-8") as f:
                        found.update(t for t in texts(f.read()) if t.strip())
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in sorted(found)))


if __name__ == "__main__":
    main()
