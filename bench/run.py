#!/usr/bin/env python3
"""Runs loopbridge's benchmark programs side by side and merges their results.

The C++ program (loopbridge and raw Asio), the Tokio program and the Python asyncio program
run in rounds; each round runs the three one after another, in an order that rotates from
round to round, so that every program sees the machine in every state. Within a program the
variants alternate block by block. The memory measures run last, in processes of their own.
The merged JSON (every block's figure, the machine, the settings) goes to --out; report.py
turns one or more such files into docs/benchmarks.md.

Needs only the Python standard library. The binaries can come from another machine:
--cpp and --tokio name them (both link statically).
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZES = {
    # rounds x blocks per round = blocks per variant
    "quick": dict(rounds=2, blocks=2, samples=1000, ops=10000, batch=1000, pending=10000),
    "full": dict(rounds=3, blocks=3, samples=2000, ops=20000, batch=1000, pending=10000),
}
GROUPS = ["latency", "throughput", "lifecycle", "pool", "memory"]


def machine():
    """CPU model and count from /proc/cpuinfo, and what else names the machine."""
    model, cores = "unknown", 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    os_name = platform.system()
    try:
        with open("/etc/os-release") as f:
            os_name = re.search(r'PRETTY_NAME="([^"]*)"', f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return {"cpu": model, "cores": cores, "usable_cpus": len(os.sched_getaffinity(0)),
            "kernel": platform.release(), "os": os_name, "hostname": platform.node()}


def default_tag(info=None):
    """The machine's short name in the report, from its CPU model and count."""
    info = info or machine()
    return re.sub(r"[^a-z0-9]+", "-", f"{info['cpu']} {info['cores']}cpu".lower()).strip("-")


def busy_fraction(seconds=1.0):
    """Share of the CPUs' time spent busy over `seconds` (while nothing of ours runs)."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total
    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_until_quiet(limit_s, threshold=0.15):
    """Waits (up to limit_s) until other processes leave the CPUs mostly idle."""
    deadline = time.monotonic() + limit_s
    busy = busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        print(f"run.py: the machine is {busy:.0%} busy with other work; waiting", file=sys.stderr)
        time.sleep(10)
        busy = busy_fraction()
    if busy > threshold:
        print(f"run.py: warning: measuring on a machine {busy:.0%} busy with other work", file=sys.stderr)
    return busy


def tokio_version(binary):
    try:
        with open(binary + ".version") as f:
            return f.read().strip()
    except OSError:
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=SIZES, default="full", help="quick: a few minutes on 2 vCPUs")
    p.add_argument("--quick", action="store_const", dest="size", const="quick")
    p.add_argument("--groups", default=",".join(GROUPS), help="of " + ",".join(GROUPS))
    p.add_argument("--threads", default="1,2,4", help="host-thread counts, e.g. 1,2,4,8,16")
    p.add_argument("--pool-loops", default="1,2,4", help="LoopPool sizes, e.g. 1,2,4,8")
    p.add_argument("--rounds", type=int, help="override the size's rounds")
    p.add_argument("--blocks", type=int, help="override the size's blocks per round")
    p.add_argument("--cpp", default=os.path.join(ROOT, "build/bench/bench/loopbridge_bench"))
    p.add_argument("--tokio", default=os.path.join(ROOT, "build/bench/tokio_bench"))
    p.add_argument("--python", default="/usr/bin/python3", help="the interpreter for the asyncio baselines")
    p.add_argument("--nice", type=int, default=-20, help="the programs' niceness (lower runs first; needs root)")
    p.add_argument("--wait-quiet", type=float, default=120,
                   help="seconds to wait for other processes to leave the CPUs idle")
    p.add_argument("--out", help="merged JSON (default docs/benchmarks/<machine>.json)")
    p.add_argument("--tag", help="the machine's short name in the report (default from the CPU)")
    o = p.parse_args()
    size = dict(SIZES[o.size])
    if o.rounds:
        size["rounds"] = o.rounds
    if o.blocks:
        size["blocks"] = o.blocks
    groups = o.groups.split(",")
    unknown = set(groups) - set(GROUPS)
    if unknown:
        sys.exit(f"run.py: unknown groups {sorted(unknown)}")

    programs = []
    if not os.access(o.cpp, os.X_OK):
        sys.exit(f"run.py: no loopbridge_bench at {o.cpp} (build it with bench/run.sh, or pass --cpp)")
    programs.append(("loopbridge_bench", [o.cpp], set(GROUPS)))
    if os.access(o.tokio, os.X_OK):
        programs.append(("tokio_bench", [o.tokio], set(GROUPS)))
    else:
        print(f"run.py: no Tokio program at {o.tokio}: skipping the Tokio baselines", file=sys.stderr)
    script = os.path.join(ROOT, "bench/python/asyncio_bench.py")
    if os.access(o.python, os.X_OK):
        programs.append(("asyncio_bench", [o.python, script], set(GROUPS) - {"pool"}))  # asyncio has no pool
    else:
        print(f"run.py: no Python at {o.python}: skipping the asyncio baselines", file=sys.stderr)

    info = machine()
    tag = o.tag or default_tag(info)
    out = o.out or os.path.join(ROOT, "docs/benchmarks", tag + ".json")
    common = ["--samples", str(size["samples"]), "--ops", str(size["ops"]), "--batch", str(size["batch"]),
              "--pending", str(size["pending"]), "--threads", o.threads, "--pool-loops", o.pool_loops]
    merged = {}
    configs = {}
    busy = []

    def run(name, command, label):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            path = tmp.name
        t = time.monotonic()
        print(f"run.py: {label}: {name}", file=sys.stderr, flush=True)
        result = subprocess.run(command + ["--json", path], cwd=ROOT)
        if result.returncode != 0:
            sys.exit(f"run.py: {name} failed with status {result.returncode}")
        with open(path) as f:
            data = json.load(f)
        os.unlink(path)
        configs.setdefault(name, data["config"])
        for r in data["records"]:
            key = (r["metric"], r["variant"], r["placement"], r["threads"], r["loops"])
            record = merged.setdefault(key, {**{k: r[k] for k in ("metric", "variant", "placement", "threads",
                                                                  "loops", "unit", "better")},
                                             "program": name, "stats": {}})
            for stat, values in r["stats"].items():
                record["stats"].setdefault(stat, []).extend(values)
        print(f"run.py: {name} took {time.monotonic() - t:.0f} s", file=sys.stderr)

    # Ahead of other work on a shared machine (compilers, say), so that it skews the figures
    # less; every program runs at the same priority. Needs root; without it, a note.
    niceness = os.nice(0)
    if o.nice is not None and niceness != o.nice:
        try:
            niceness = os.nice(o.nice - niceness)
        except OSError as e:
            print(f"run.py: cannot raise the priority to nice {o.nice} ({e}): running at nice {niceness}",
                  file=sys.stderr)
    started = datetime.datetime.now(datetime.timezone.utc)
    timed_groups = [g for g in groups if g != "memory"]
    if timed_groups:
        for rnd in range(size["rounds"]):
            busy.append(wait_until_quiet(o.wait_quiet))
            for i in range(len(programs)):
                name, command, supported = programs[(rnd + i) % len(programs)]
                mine = [g for g in timed_groups if g in supported]
                if mine:
                    run(name, command + ["--groups", ",".join(mine), "--blocks", str(size["blocks"])] + common,
                        f"round {rnd + 1}/{size['rounds']}")
    if "memory" in groups:
        # Heap figures barely move between blocks: two are enough.
        for name, command, _ in programs:
            run(name, command + ["--groups", "memory", "--blocks", "2"] + common, "memory")

    versions = {"tokio": tokio_version(o.tokio)}
    result = {
        "tag": tag,
        "machine": info,
        "date": started.strftime("%Y-%m-%d"),
        "code": source_version(),
        "size": o.size,
        "rounds": size["rounds"],
        "blocks_per_round": size["blocks"],
        "busy_before_rounds": [round(b, 3) for b in busy],
        "nice": niceness,
        "programs": configs,
        "versions": versions,
        "records": sorted(merged.values(), key=lambda r: (r["metric"], r["variant"], r["placement"],
                                                          r["threads"] or 0, r["loops"] or 0)),
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_result(out, result)
    print(f"run.py: wrote {out}", file=sys.stderr)


def source_version():
    """The commit the programs were built from ("+changes" when the tree differs from it), or
    None outside a git checkout (a copied tree)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        changes = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no", "--", "..",
                                  ":!../docs", ":!report.py"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changes else "")


def write_result(path, result):
    """JSON with one record per line: small enough to commit, easy to diff."""
    head = json.dumps({k: v for k, v in result.items() if k != "records"}, indent=1)
    records = ",\n".join("  " + json.dumps(r) for r in result["records"])
    with open(path, "w") as f:
        f.write(head[:-2] + ',\n "records": [\n' + records + "\n ]\n}\n")


if __name__ == "__main__":
    main()
