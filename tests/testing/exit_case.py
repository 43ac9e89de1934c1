#!/usr/bin/env python3
"""Runs one exit-time scenario and checks how the process ended.

usage: exit_case.py [--exit-code N] [--within SECONDS] [--repeat N]
                    [--expect REGEX]... [--reject REGEX]... -- PROGRAM [ARG...]

Each run must end within --within seconds of wall-clock time (past it, the whole process
group is killed: a hang fails here, with what it printed, instead of at ctest's timeout),
with exit code --exit-code, with every --expect regex found and no --reject regex found in
its stdout and stderr, and with no sanitizer report. Races at exit show up in some runs
only: --repeat runs it that many times, and every run must pass. Exits 0 when all passed;
otherwise prints why the first failing run failed, and what it printed.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

# A report by ASan, LSan, TSan or UBSan; TSan's "starting new threads after fork" included.
SANITIZER_REPORT = re.compile(r"(Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:")


def describe(code):
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def run_once(args):
    began = time.monotonic()
    # A session of its own, so that a hang's children (a fork() child) are killed with it.
    process = subprocess.Popen(args.program, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=args.within)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        hung = True
    took = time.monotonic() - began
    stdout = stdout.decode(errors="replace")
    stderr = stderr.decode(errors="replace")
    output = stdout + stderr

    problems = []
    if hung:
        problems.append(f"it did not end within {args.within} s: killed")
    elif process.returncode != args.exit_code:
        problems.append(f"it ended with {describe(process.returncode)}, not exit code {args.exit_code}")
    report = SANITIZER_REPORT.search(stderr)
    if report:
        problems.append(f"a sanitizer reported something ({report.group(0)})")
    for pattern in args.expect:
        if not re.search(pattern, output, re.MULTILINE):
            problems.append(f"its output lacks /{pattern}/")
    for pattern in args.reject:
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            line_start = output.rfind("\n", 0, found.start()) + 1
            line_end = output.find("\n", found.end())
            line = output[line_start:line_end if line_end >= 0 else None]
            problems.append(f"its output has /{pattern}/: {line}")
    return took, problems, stdout, stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--within", type=float, default=10.0, help="wall-clock bound of one run, in seconds")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("program", nargs="+")
    args = parser.parse_args()

    longest = 0.0
    for attempt in range(1, args.repeat + 1):
        took, problems, stdout, stderr = run_once(args)
        longest = max(longest, took)
        if problems:
            print(f"FAILED on run {attempt} of {args.repeat} ({took:.2f} s): {' '.join(args.program)}")
            for problem in problems:
                print(f"  - {problem}")
            print("---- stdout ----")
            print(stdout, end="" if stdout.endswith("\n") or not stdout else "\n")
            print("---- stderr ----")
            print(stderr, end="" if stderr.endswith("\n") or not stderr else "\n")
            return 1
    print(f"passed: {args.repeat} run(s), the longest {longest:.2f} s (bound {args.within} s)")
    print("---- stdout of the last run ----")
    print(stdout, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
