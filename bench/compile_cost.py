#!/usr/bin/env python3
"""Measures what including loopbridge costs a user's compile, against Asio in the same run.

Two pairs of files in bench/compile/, compiled with the flags CMake gives them (read from
the build's compile_commands.json, so include paths and definitions are the ones a user of
the exported target gets):

  (a) umbrella.cpp (#include <loopbridge/loopbridge.hpp>) against asio_subset.cpp (the Asio
      headers the public API needs), with -fsyntax-only;
  (b) user_loopbridge.cpp (a typical user file) against user_asio.cpp (the same work written
      by hand on Asio), compiled to an object with -O2 -g.

For each file: preprocessed lines (non-blank, without line markers), the compiler's CPU
time (user + system, so that other work on the machine does not count against it) and its
peak memory (maximum resident set). The files alternate rep by rep; medians are reported,
and the ratios loopbridge / Asio. Writes docs/benchmarks/compile/<machine>.json, which
bench/report.py turns into a section of docs/benchmarks.md.

Usage: compile_cost.py --build build/bench [--reps 5] [--out FILE] [--tag NAME]
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys

import run  # bench/run.py: the machine's description and short name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = [
    dict(id="umbrella", what="the umbrella header alone (-fsyntax-only)", mode="syntax",
         loopbridge="umbrella.cpp", asio="asio_subset.cpp"),
    dict(id="user_file", what="a typical user file (-O2 -g, to an object)", mode="object",
         loopbridge="user_loopbridge.cpp", asio="user_asio.cpp"),
]


def sample_commands(build):
    """The compiler command line of each sample, without its output, dependency, optimisation
    and debug flags."""
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    commands = {}
    for entry in entries:
        name = os.path.basename(entry["file"])
        if os.path.basename(os.path.dirname(entry["file"])) != "compile":
            continue
        args = entry.get("arguments") or shlex.split(entry["command"])
        kept, skip = [], False
        for arg in args:
            if skip:
                skip = False
                continue
            if arg in ("-o", "-MT", "-MF", "-MQ"):
                skip = True
                continue
            if arg in ("-c", "-MD", "-MMD") or re.fullmatch(r"-O.?|-g.*", arg):
                continue
            kept.append(arg)
        commands[name] = (kept, entry["directory"])
    missing = {p[k] for p in PAIRS for k in ("loopbridge", "asio")} - commands.keys()
    if missing:
        sys.exit(f"compile_cost.py: {sorted(missing)} not in {build}/compile_commands.json "
                 "(configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON and the bench or tests on)")
    return commands


def preprocessed_lines(command, directory):
    out = subprocess.run(command + ["-E", "-P"], cwd=directory, check=True, capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def compile_once(command, directory, mode):
    """CPU seconds (user + system) and peak resident megabytes of one compiler run."""
    extra = ["-fsyntax-only"] if mode == "syntax" else ["-O2", "-g", "-c", "-o", os.devnull]
    process = subprocess.Popen(command + extra, cwd=directory)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"compile_cost.py: the compiler failed on {command[-1]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def compiler_version(command):
    out = subprocess.run([command[0], "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else command[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build/bench"), help="a configured build directory")
    p.add_argument("--reps", type=int, default=5, help="compiles of each file (alternating)")
    p.add_argument("--out", help="result file (default docs/benchmarks/compile/<tag>.json)")
    p.add_argument("--tag", help="the machine's short name (default from the CPU)")
    o = p.parse_args()

    commands = sample_commands(o.build)
    results = {}
    for pair in PAIRS:
        files = [pair["loopbridge"], pair["asio"]]
        for name in files:
            command, directory = commands[name]
            results[name] = dict(lines=preprocessed_lines(command, directory), cpu_s=[], peak_mb=[])
        for rep in range(o.reps):
            for name in files if rep % 2 == 0 else reversed(files):
                command, directory = commands[name]
                cpu_s, peak_mb = compile_once(command, directory, pair["mode"])
                results[name]["cpu_s"].append(cpu_s)
                results[name]["peak_mb"].append(peak_mb)

    info = run.machine()
    tag = o.tag or run.default_tag(info)
    first_command = commands[PAIRS[0]["loopbridge"]][0]
    record = dict(cpu=info["cpu"], cores=info["cores"], compiler=compiler_version(first_command),
                  flags=" ".join(a for a in first_command[1:-1] if a.startswith(("-std", "-D", "-f"))),
                  reps=o.reps, pairs=PAIRS, files=results)
    out = o.out or os.path.join(ROOT, "docs/benchmarks/compile", tag + ".json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(record, f, indent=1)

    print(f"{'':44} {'lines':>9} {'CPU s':>7} {'peak MB':>8}")
    for pair in PAIRS:
        rows = {side: results[pair[side]] for side in ("loopbridge", "asio")}
        for side, r in rows.items():
            print(f"{pair['id'] + ' ' + side:44} {r['lines']:9} {statistics.median(r['cpu_s']):7.2f}"
                  f" {statistics.median(r['peak_mb']):8.0f}")
        lb, base = rows["loopbridge"], rows["asio"]
        print(f"{pair['id'] + ' ratio':44} {lb['lines'] / base['lines']:8.2f}x"
              f" {statistics.median(lb['cpu_s']) / statistics.median(base['cpu_s']):6.2f}x"
              f" {statistics.median(lb['peak_mb']) / statistics.median(base['peak_mb']):7.2f}x")
    print(f"compile_cost.py: wrote {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
