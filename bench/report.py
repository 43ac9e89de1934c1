#!/usr/bin/env python3
"""Writes docs/benchmarks.md and docs/benchmarks/chart.png from benchmark result files.

Usage: report.py [RESULT.json ...]   (default: every docs/benchmarks/*.json)

Each result file is one machine's run of bench/run.py. The report names every machine,
gives each one's ratios against the targets (same run, same placement), every figure
with its spread over blocks, and a chart of the first file (the 2-vCPU reference run)
plus the host-thread and pool scaling of every machine. The chart needs gnuplot; without
it the report says so and links no image.
"""

import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs/benchmarks.md")
CHART = os.path.join(ROOT, "docs/benchmarks/chart.png")

NAMES = {
    "loopbridge": "loopbridge",
    "loopbridge_spin": "loopbridge, low-latency mode (`spin_before_sleep` = 50 us)",
    "asio_post_promise": "Asio `post` + `std::promise`",
    "asio_co_spawn": "Asio `co_spawn(use_future)`",
    "asio_post": "Asio `post`",
    "asio_thread": "Asio `io_context` + work guard + thread",
    "std_thread": "`std::thread` create + join",
    "asio_cancel_signals": "Asio: emit a cancellation signal per task, wait every `use_future`",
    "loopbridge_tuple": "loopbridge, tasks that take errors as values (`as_tuple`)",
    "asio_cancel_signals_tuple": "Asio, tasks that take errors as values (`as_tuple`): a signal per task, "
                                 "wait every `use_future`",
    "loopbridge_drop": "loopbridge, `stop({.drop_in_flight = true})`: frames dropped unresumed",
    "asio_destroy": "Asio: stop the `io_context`, join, destroy it (frames dropped, futures broken)",
    "asio_co_spawn_signal": "Asio `co_spawn(use_future)` + a cancellation signal",
    "tokio_mt_oneshot": "Tokio `spawn` + oneshot (multi-thread runtime)",
    "tokio_mt_block_on": "Tokio `block_on(spawn(..))` (multi-thread runtime)",
    "tokio_ct_oneshot": "Tokio `spawn` + oneshot (current-thread runtime on its thread)",
    "tokio_ct_block_on": "Tokio `block_on(spawn(..))` (current-thread runtime on its thread)",
    "tokio_mt_spawn": "Tokio `spawn` (multi-thread runtime)",
    "tokio_ct_spawn": "Tokio `spawn` (current-thread runtime on its thread)",
    "tokio_mt_drop": "Tokio: drop the multi-thread runtime",
    "tokio_ct_drop": "Tokio: drop the current-thread runtime",
    "tokio_mt": "Tokio multi-thread runtime (1 worker): build + drop",
    "tokio_ct": "Tokio current-thread runtime on a thread: build + drop",
    "asyncio_call_soon": "asyncio `call_soon_threadsafe` (+ `concurrent.futures.Future`)",
    "uvloop_call_soon": "uvloop `call_soon_threadsafe` (+ `concurrent.futures.Future`)",
    "asyncio_run_coroutine": "asyncio `run_coroutine_threadsafe`",
    "uvloop_run_coroutine": "uvloop `run_coroutine_threadsafe`",
    "asyncio_cancel_all": "asyncio: cancel every task, gather, stop, join",
    "uvloop_cancel_all": "uvloop: cancel every task, gather, stop, join",
    "asyncio": "asyncio loop on a thread: start + stop",
    "uvloop": "uvloop loop on a thread: start + stop",
    "python_thread": "Python `threading.Thread` start + join",
    "mutex_condvar": "floor: mutex + condition variable ping-pong",
    "atomic_spin": "floor: spinning atomic ping-pong",
    "loopbridge_pool": "loopbridge `LoopPool` (round robin)",
    "asio_pool_post_promise": "Asio, one `io_context` per thread, round robin: `post` + `std::promise`",
    "asio_pool_co_spawn": "Asio, one `io_context` per thread, round robin: `co_spawn(use_future)`",
}

WORKLOADS = {
    "tp_callable": "callables with futures",
    "tp_coroutine": "coroutines with futures",
    "tp_post": "fire-and-forget",
    "pool_callable": "callables with futures",
    "pool_coroutine": "coroutines with futures",
}

# Ratios are loopbridge / baseline, medians over blocks, same run and placement. Where a
# target names several baselines the strictest (best) one is used.
PLACEMENTS = {"pinned": "pinned", "spread": "hosts spread", "os": "placed by the OS"}


def throughput_targets():
    """Every throughput goal in every placement: the goals hold where users run, not only
    where the threads are pinned. Fire-and-forget with 1, 2 and 4 producers."""
    targets = []
    for place, words in PLACEMENTS.items():
        targets += [
            dict(id="tp_coroutine_asio", what=f"coroutine + future throughput, 1 host thread, {words}",
                 metric="tp_coroutine", threads=1, placement=place, base=["asio_co_spawn"], goal=(">=", 3.0)),
            dict(id="tp_coroutine_tokio", what=f"coroutine + future throughput, 1 host thread, {words}",
                 metric="tp_coroutine", threads=1, placement=place, base=["tokio_mt_oneshot", "tokio_ct_oneshot"],
                 goal=(">=", 1.0)),
            dict(id="tp_callable", what=f"callable + future throughput, 1 host thread, {words}",
                 metric="tp_callable", threads=1, placement=place, base=["asio_post_promise"], goal=(">=", 1.5)),
        ]
        for hosts in (1, 2, 4):
            targets.append(dict(id="tp_post", what=f"fire-and-forget throughput, {hosts} host thread"
                                f"{'s' if hosts > 1 else ''}, {words}", metric="tp_post", threads=hosts,
                                placement=place, base=["asio_post"], goal=(">=", 1.2)))
    return targets


# Ratios are loopbridge / baseline, medians over blocks, same run and placement. Where a
# target names several baselines the strictest (best) one is used.
TARGETS = throughput_targets() + [
    dict(id="rt_callable", what="callable round trip p50, same CPU", metric="rt_callable", placement="same_cpu",
         stat="p50", base=["asio_post_promise"], goal=("<=", 1.1)),
    dict(id="rt_coroutine", what="coroutine round trip p50, same CPU", metric="rt_coroutine",
         placement="same_cpu", stat="p50", base=["asio_co_spawn"], goal=("<=", 1.0)),
    dict(id="rt_callable", what="callable round trip p50, placed by the OS", metric="rt_callable",
         placement="os", stat="p50", base=["asio_post_promise"], goal=("<=", 1.1)),
    dict(id="rt_coroutine", what="coroutine round trip p50, placed by the OS", metric="rt_coroutine",
         placement="os", stat="p50", base=["asio_co_spawn"], goal=("<=", 1.0)),
    dict(id="spin", what="low-latency mode round trip p50, different CPUs", metric="rt_callable",
         placement="cross_cpu", stat="p50", ours="loopbridge_spin", base_metric="rt_floor", base=["atomic_spin"],
         goal=("<=", 10.0)),
    dict(id="stop_asio", what="stop with 10,000 tasks on timers whose awaits throw, every future settled",
         metric="stop_pending", base=["asio_cancel_signals"], goal=("<=", 1.0)),
    dict(id="stop_asio_tuple", what="stop with 10,000 tasks on timers that take errors as values, every "
         "future settled", metric="stop_pending", ours="loopbridge_tuple", base=["asio_cancel_signals_tuple"],
         goal=("<=", 1.0)),
    dict(id="stop_asio_drop", what="stop with 10,000 tasks on timers, frames dropped", metric="stop_pending",
         ours="loopbridge_drop", base=["asio_destroy"], goal=("<=", 1.0)),
    dict(id="stop_tokio_drop", what="stop with 10,000 tasks on timers, frames dropped as Tokio does",
         metric="stop_pending", ours="loopbridge_drop", base=["tokio_mt_drop", "tokio_ct_drop"], goal=("<=", 1.0)),
    dict(id="stop_tokio", what="stop with 10,000 tasks on timers, every future settled, against Tokio's drop",
         metric="stop_pending", base=["tokio_mt_drop", "tokio_ct_drop"], goal=("<=", 1.0)),
    dict(id="mem_tokio", what="heap per pending task", metric="mem_pending", base=["tokio_mt_spawn", "tokio_ct_spawn"],
         goal=("<=", 1.0)),
    dict(id="start_stop", what="start + stop of an empty loop", metric="start_stop", base=["std_thread"],
         goal=("<=", 1.2)),
    dict(id="python", what="coroutine + future throughput, 1 host thread", metric="tp_coroutine", threads=1,
         placement="pinned", base=["asyncio_run_coroutine"], goal=(">=", 50.0)),
]

# What bounds a missed target: the mechanism, with the evidence behind it. Shown only
# while the target is missed.
BOUNDS = {
    "tp_post": (
        "Each post pays for the loop's statistics: the host reads the clock to stamp the "
        "submission (submit-to-start lag) and the loop thread reads it once more per command "
        "(a command's end is the next one's start within a batch) and records the lag in a "
        "histogram; on these virtual machines `steady_clock::now()` costs 20-50 ns, a large "
        "part of what a whole post costs Asio. The host also writes two cache lines: the "
        "queued count, and the queue head with its push count beside it; with producers on "
        "different CPUs (placed by the OS or spread) both lines move between them on every "
        "post, where Asio's producers queue on one mutex. A "
        "post's memory goes back from the loop thread to the posting threads through a "
        "recycling stack, which took malloc's cross-thread cost (a third of a profile) out. "
        "Timing one post in eight, skipping the context swap for posts without one, and "
        "posting no wake-up while the loop drains were each tried and measured on a sustained "
        "stream of posts (500,000 from one thread, seven alternating runs): together they made "
        "it slower (4.4 M/s against 4.9 M/s), because a faster host lets the backlog grow and "
        "the loop then reverses and runs batches of tens of thousands of commands whose memory "
        "has left the cache. On that sustained stream loopbridge ran 1.3x raw `asio::post`; "
        "the blocks here are 20,000 posts from freshly started threads, where the loop's "
        "wake-ups and the threads' start weigh more and both sides spread widely."),
    "tp_callable": (
        "The same per-submission clock reads and shared counters as fire-and-forget (see "
        "there), on a path that also allocates the task's state and wakes the host."),
    "tp_coroutine_asio": (
        "Each coroutine task also pays the loop's statistics (clock reads and shared counters, "
        "see fire-and-forget), and every resumption of its coroutine passes through a timing "
        "executor that reads the clock twice."),
    "tp_coroutine_tokio": (
        "A Tokio task is one allocation holding the future, polled in place. A loopbridge "
        "coroutine task is one allocation too (its state, made on the host thread); the loop "
        "thread allocates nothing per task (Asio recycles the coroutine frames and, since "
        "fa5cd72, the task's cancellation state), but each task resumes through Asio's "
        "coroutine machinery and a timing executor, and pays the loop's statistics (see "
        "fire-and-forget). The blocks spread widely on 2 vCPUs, and interleaving costs "
        "loopbridge: on the 2-vCPU machine it ran 4.1-4.6 M/s alone and 3.4 M/s right after "
        "the Asio `co_spawn` variant (cause not found; glibc's heap state left by that "
        "variant's threads is the likely one)."),
    "stop_tokio": (
        "`stop()` resumes every coroutine with `operation_aborted` so that its `catch` blocks "
        "and destructors run on the loop thread (asyncio's cancellation). Asio's "
        "`use_awaitable` turns the error into an exception thrown in the task's frame: one "
        "throw per task (loopbridge's driver takes it out of the body's frame without a "
        "second one since f0b51c9), and perf still puts more than half of the stop in the "
        "unwinder (`execute_cfa_program`, `uw_frame_state_for`, the FDE search of this static "
        "binary). Dropping a Tokio runtime destroys the futures without polling them: none of "
        "their code runs. The like-for-like comparison is the frames-dropped row."),
    "stop_tokio_drop": (
        "Both destroy the frames without resuming them; loopbridge also settles each handle "
        "(with one `TaskCancelled` the stop shares among them) and takes each task out of its "
        "in-flight list. The rest is Asio's teardown of a parked coroutine, which the raw Asio "
        "row pays too: its timer queue hands over every timer (about a tenth of the stop in "
        "perf, a cache miss per frame), each coroutine thread posts its own frame's destruction "
        "through its type-erased executor to the scheduler, which destroys it unrun (about a "
        "quarter of the stop: executor copies, an operation and the scheduler's lock per task), "
        "and glibc frees three blocks per task (two coroutine frames and the timer's operation: "
        "about a fifth). Tokio drops each future in place inside its task, which is freed only "
        "when its `JoinHandle` goes, after the timed stop. Destroying those posts in place "
        "instead measured 1.7 ms against 2.8 ms on the 2-vCPU machine, but would run frame "
        "destructors inside whatever lock the poster holds (a channel's close holds the "
        "channel's): a possible hang at shutdown, so loopbridge leaves them to the scheduler."),
    "stop_asio": (
        "Both sides resume every task with an exception thrown in its frame by Asio's "
        "`use_awaitable`; `co_spawn`'s entry point then rethrows it into its own frame, a "
        "second throw per task that loopbridge's driver does not make. What loopbridge adds "
        "is its bookkeeping per task: the stage change, settling the handle (one shared "
        "`TaskCancelled`), taking the task out of the in-flight list, the counters, and "
        "sending the cancels 1,024 at a time with a look at the clock in between (so that the "
        "stop's deadlines hold at any backlog)."),
    "stop_asio_tuple": (
        "Without exceptions the stop is bookkeeping on both sides, and loopbridge's per-task "
        "bookkeeping (see the throwing row) is a larger share of it: Asio's row only emits a "
        "signal per task and waits for its futures."),
    "stop_asio_drop": (
        "Both destroy the frames without resuming them; loopbridge also settles each handle "
        "and takes each task out of its in-flight list, and the frames' destruction is posted "
        "through each task's executor (see the Tokio row)."),
    "mem_tokio": (
        "A Tokio task is one allocation holding its future. A pending loopbridge coroutine task "
        "holds, besides the frames Asio allocates for the body, its timer wait and its "
        "cancellation state (the raw Asio row pays those too): its task state, allocated on the "
        "host (184 B: result, stage, in-flight links, cancellation signal, label, callable; a "
        "name, a context or a stop-token link go in a block of their own only for the tasks "
        "that have one), a driver coroutine frame (184 B: on Asio 1.26 the body starts above "
        "it, so it never suspends itself) and a 24 B handle."),
    "start_stop": (
        "Besides creating and joining the thread, a start and a stop hand over between threads "
        "three more times: `start()` waits for the loop thread to say it runs, the stop command "
        "wakes the loop thread, and the host waits on a latch for the loop thread to finish "
        "before joining it. Each handover is a sleeping wake on these machines (tens of "
        "microseconds across CPUs). The loop no longer opens epoll when it is made (only the "
        "io_uring build probes its backend) nor reads the CPU count unless affinity is set."),
    "rt_callable": (
        "The same wake-up as raw Asio (an idle loop without timers or sockets waits on the "
        "io_context's condition variable), plus the submission's statistics: a clock read on "
        "each side for the lag, two around the callable, and the counters (see "
        "fire-and-forget): about 0.1 us. Where a run's blocks fall into two speeds for both "
        "sides alike (the 16-core run: 2.6-2.8 us and 3.8-4.0 us, Asio and loopbridge both), "
        "the ratio of medians depends on how many of each side's blocks landed in the slow "
        "group; the block-by-block median compares like with like."),
    "rt_coroutine": (
        "As for callables, plus the timing executor's clock reads around each resumption of "
        "the coroutine."),
    "python": (
        "Python's figure is bounded by the interpreter, not by loopbridge: see the absolute "
        "figures below."),
}

FAST = """\
## What makes it fast

- One intrusive lock-free queue: a submission is one compare-and-swap; the loop takes a
  whole batch with one exchange, and only the submission that finds the queue empty wakes
  the loop.
- One allocation per task: its result state, its queue nodes and its callable together; a
  posted callable is a bare queue node.
- Coroutine tasks are launched directly as the bottom frame of an Asio coroutine thread:
  no `co_spawn` entry point (dispatch, work guards, completion handler, final post).
- Host threads wait on a futex in the task's state word, woken only if they sleep.
"""

HOW = """\
## How each figure is measured

Every program follows the same rules, so that a figure of one means what the same figure
of another means:

- **The loops.** loopbridge: a `BackgroundLoop` with default options unless a row says
  otherwise; pools: a `LoopPool`. Raw Asio: an `io_context` run by its own thread with a
  work guard; pools: one such loop per thread, picked round robin through a shared
  counter. Tokio (Debian's 1.24): a multi-thread runtime with one worker
  (`Builder::new_multi_thread().worker_threads(1).enable_all()`, what `Runtime::new()`
  builds, cut to one worker) and a current-thread runtime driven by its own thread blocked
  in `block_on`; pools: a multi-thread runtime with one worker per loop. Python (the system
  interpreter): the stdlib event loop and uvloop, each running forever on its own thread.
- **Placement.** CPU *k* is the *k*-th CPU the process may use. Round trips and lag run
  three times: host thread and loop thread both on CPU 0 ("same CPU"), host on CPU 0 with
  the loop on CPU 1 ("different CPUs"), and nothing pinned ("OS-placed"). Throughput runs
  in up to three placements: "pinned" (the loop thread on the last CPU, every host thread
  on CPU 0), "hosts spread" (the loop on the last CPU, host thread *h* on CPU *h* mod
  (CPUs - 1); only with several hosts and at least 3 CPUs) and "placed by the OS" (no
  thread pinned, as a user's threads run). A pinned pool of *L* loops takes the last *L*
  CPUs (from the top down, wrapping) and host *h* CPU *h* mod (CPUs - *L*), or *h* mod
  CPUs when no CPU is left; pools also run placed by the OS. Results measured before the
  placements were named are the pinned ones. Start + stop runs on CPU 0 and the new
  threads inherit it.
  Tokio's runtime threads are pinned in `on_thread_start`; Python pins each thread with
  `os.sched_setaffinity(0, ...)`.
- **Priority.** With root, `bench/run.py` runs every program at nice -20, so that other
  work on a shared machine skews the figures less; the Machines table gives the share of
  CPU time other processes took just before each round. Tails (p99, p999) on a busy
  machine measure its scheduler more than the code.
- **Blocks.** Within a program the variants of a measure run in alternating blocks after
  one warm-up block whose figures are dropped, each block starting one variant further
  along and every other one running the order backwards (so each variant follows two
  different ones); across programs, `bench/run.py` runs the three programs in rounds
  whose order rotates. A figure is the median over all blocks of that block's statistic;
  "range" is the lowest and highest block. A ratio is the ratio of medians; its range, the
  lowest and highest of the block-by-block ratios (blocks paired by round and position).
- **Round trip**: one task per sample, submitted from the host thread and waited for
  (`submit(..).get()`, `post` + `std::promise::get_future().get()`,
  `co_spawn(.., use_future).get()`, Tokio `spawn` + `oneshot::blocking_recv()` or
  `Handle::block_on(spawn(..))`, Python `.result()` on the `concurrent.futures.Future`).
  p50, p99 and p999 of each block's samples (the sample at rank floor(p n)).
- **Submit-to-start lag**: the task returns the time it started (read on the loop
  thread); the lag is that minus the time read just before submitting. One at a time.
- **Floors**: two threads handing a turn back and forth: through a spinning atomic (the
  hardware floor), and through a mutex + condition variable (the sleeping wake).
- **Throughput**: each host thread submits its share in batches, keeping a whole batch in
  flight, then takes every result in order; the time runs from releasing the hosts
  together to the last one done. Fire-and-forget posts count down a shared counter; the
  task that completes the count reads the end time. Every program submits the same number
  of tasks per host thread in the same batches; a task returns 1 (summed and checked).
- **Start + stop**: 20 rounds per block, mean per round. loopbridge's `start()` without
  hooks returns once its thread exists (the thread names itself when it first runs), as
  Asio's and Tokio's equivalents return without waiting for their thread.
- **Stop with pending tasks**: the host submits the tasks one by one; each counts itself
  started and waits on a one-hour timer. Once all are parked the clock starts; it stops
  when the loop thread is joined (loopbridge `stop()`; Asio: emit every task's
  cancellation signal on the loop thread, wait for every `use_future`, join; Tokio: drop
  the runtime; asyncio: cancel every task, gather, stop, join). Every future is then
  checked to have settled. loopbridge and Asio each run two task shapes: awaits that
  throw on cancellation (`use_awaitable`) and awaits that take errors as values
  (`as_tuple(use_awaitable)`); each stop is compared with the Asio stop of its own shape,
  and the frames-dropped stop with Asio's destroy of the `io_context`.
- **Memory per pending task**: heap bytes in use (glibc `mallinfo2`, all threads on one
  arena) grown by submitting the tasks and holding their handles in an array, divided by
  the count; Python counts its allocations with `tracemalloc`. Run in a separate process.
"""


def load(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        run["path"] = path
        for r in run["records"]:
            # Throughput measured before placements were named ran pinned.
            if r["placement"] == "" and r["metric"].startswith(("tp_", "pool_")):
                r["placement"] = "pinned"
        runs.append(run)
    return runs


def find(run, metric, variant, placement="", threads=None, loops=None):
    for r in run["records"]:
        if (r["metric"], r["variant"], r["placement"], r["threads"], r["loops"]) == (
                metric, variant, placement, threads, loops):
            return r
    return None


def med(values):
    return statistics.median(values)


def fmt(value, unit):
    if value is None:
        return ""
    if unit == "ops/s":
        if value >= 1e6:
            return f"{value / 1e6:.2f} M"
        return f"{value / 1e3:.0f} k"
    if unit == "bytes":
        return f"{value:.0f} B"
    suffix = {"us": " us", "ms": " ms"}.get(unit, "")
    if value >= 100:
        return f"{value:.0f}{suffix}"
    if value >= 10:
        return f"{value:.1f}{suffix}"
    return f"{value:.2f}{suffix}"


def spread(values, unit):
    return f"{fmt(min(values), unit)} - {fmt(max(values), unit)}"


def best_of(run, target, stat):
    """The best baseline a target names that this run has, as (variant, record)."""
    found = []
    for variant in target["base"]:
        r = find(run, target.get("base_metric", target["metric"]), variant, target.get("placement", ""),
                 target.get("threads"))
        if r and stat in r["stats"]:
            found.append((med(r["stats"][stat]), variant, r))
    if not found:
        return None, None
    higher = found[0][2]["better"] == "higher"
    _, variant, record = max(found, key=lambda f: f[0]) if higher else min(found, key=lambda f: f[0])
    return variant, record


def verdict(ratio, goal):
    op, want = goal
    if op == ">=":
        if ratio >= want:
            return f"met ({ratio / want:.2f}x the goal)"
        return f"**missed**: {ratio:.2f}x of {want:g}x, {100 * (1 - ratio / want):.0f} % short"
    if ratio <= want:
        return f"met ({want / ratio:.2f}x under the goal)" if ratio > 0 else "met"
    return f"**missed**: {ratio:.2f}x against at most {want:g}x, {ratio / want:.1f} times the goal"


def target_rows(run):
    rows, misses = [], []
    for t in TARGETS:
        stat = t.get("stat", "value")
        ours = find(run, t["metric"], t.get("ours", "loopbridge"), t.get("placement", ""), t.get("threads"))
        variant, base = best_of(run, t, stat)
        if not ours or not base or stat not in ours["stats"]:
            continue
        o, b = ours["stats"][stat], base["stats"][stat]
        ratio = med(o) / med(b)
        pairs = [x / y for x, y in zip(o, b)]
        unit = ours["unit"]
        goal = f"{t['goal'][0].replace('>=', '≥').replace('<=', '≤')} {t['goal'][1]:g}x"
        v = verdict(ratio, t["goal"])
        rows.append(f"| {t['what']} | {fmt(med(o), unit)} | {NAMES.get(variant, variant)}: {fmt(med(b), unit)} "
                    f"| **{ratio:.2f}x** ({min(pairs):.2f} - {max(pairs):.2f}) | {goal} | {v} |")
        if v.startswith("**missed"):
            misses.append((t, NAMES.get(variant, variant), ratio, med(pairs)))
    return rows, misses


def latency_tables(run):
    out = []
    placements = [p for p in ("same_cpu", "cross_cpu", "os")
                  if any(r["placement"] == p for r in run["records"])]
    titles = {"same_cpu": "same CPU", "cross_cpu": "different CPUs", "os": "OS-placed"}
    for metric, title, stats in (
            ("rt_callable", "Round trip, callable", ("p50", "p99", "p999")),
            ("rt_coroutine", "Round trip, coroutine", ("p50", "p99", "p999")),
            ("rt_floor", "Round trip, floors", ("p50", "p99", "p999")),
            ("lag_callable", "Submit-to-start lag, callable", ("p50", "p99")),
            ("lag_coroutine", "Submit-to-start lag, coroutine", ("p50", "p99"))):
        variants = sorted({r["variant"] for r in run["records"] if r["metric"] == metric}, key=variant_order)
        if not variants:
            continue
        header = "| " + title + " (us) | " + " | ".join(
            f"{titles[p]} {s}" for p in placements for s in stats) + " |"
        out += [header, "|---" * (1 + len(placements) * len(stats)) + "|"]
        for v in variants:
            cells = []
            for p in placements:
                r = find(run, metric, v, p)
                for s in stats:
                    cells.append(fmt(med(r["stats"][s]), "") if r and s in r["stats"] else "")
            out.append(f"| {NAMES.get(v, v)} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def variant_order(variant):
    order = ["loopbridge", "loopbridge_spin", "loopbridge_pool", "asio", "tokio_mt", "tokio_ct", "asyncio", "uvloop",
             "python", "std", "atomic", "mutex"]
    for i, prefix in enumerate(order):
        if variant == prefix or variant.startswith(prefix + "_") or variant.startswith(prefix):
            return (i, variant)
    return (len(order), variant)


def scaling_table(run, metric, column_key, fixed=None, placement="pinned"):
    """Rows: variants; columns: threads (or loops); cells: median (ratio loopbridge/this)."""
    records = [r for r in run["records"] if r["metric"] == metric and (fixed is None or r["loops"] == fixed)
               and r["placement"] == placement]
    if not records:
        return []
    columns = sorted({r[column_key] for r in records})
    variants = sorted({r["variant"] for r in records}, key=variant_order)
    ours_name = "loopbridge_pool" if metric.startswith("pool") else "loopbridge"
    label = "host threads" if column_key == "threads" else "loops"
    out = [f"| {WORKLOADS[metric]}, {PLACEMENTS[placement]} (ops/s; loopbridge ÷ this) | " + " | ".join(
        f"{c} {label if c != 1 else label.rstrip('s')}" for c in columns) + " |", "|---" * (1 + len(columns)) + "|"]
    for v in variants:
        cells = []
        for c in columns:
            r = next((x for x in records if x["variant"] == v and x[column_key] == c), None)
            ours = next((x for x in records if x["variant"] == ours_name and x[column_key] == c), None)
            if not r:
                cells.append("")
                continue
            value = med(r["stats"]["value"])
            cell = fmt(value, "ops/s")
            if ours and v != ours_name:
                cell += f" ({med(ours['stats']['value']) / value:.2f}x)"
            cells.append(cell)
        out.append(f"| {NAMES.get(v, v)} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def lifecycle_table(run):
    out = []
    for metric, title in (("start_stop", "Start + stop of an empty loop"),
                          ("stop_pending", "Stop with the pending tasks on timers, every future settled"),
                          ("mem_pending", "Heap per pending task (handle included)")):
        records = sorted((r for r in run["records"] if r["metric"] == metric), key=lambda r: variant_order(r["variant"]))
        if not records:
            continue
        ours = next((r for r in records if r["variant"] == "loopbridge"), None)
        out += [f"| {title} | median | range | loopbridge ÷ this |", "|---|---|---|---|"]
        for r in records:
            values = r["stats"]["value"]
            ratio = f"{med(ours['stats']['value']) / med(values):.2f}x" if ours and r is not ours else ""
            out.append(f"| {NAMES.get(r['variant'], r['variant'])} | {fmt(med(values), r['unit'])} | "
                       f"{spread(values, r['unit'])} | {ratio} |")
        out.append("")
    return out


COMPILE_GOAL = 1.2


def compile_section():
    """What including loopbridge costs a compile (bench/compile_cost.py's result files),
    against the Asio headers the API needs, measured in the same run."""
    paths = sorted(glob.glob(os.path.join(ROOT, "docs/benchmarks/compile/*.json")))
    if not paths:
        return []
    out = ["## Compile cost", "",
           "What `#include <loopbridge/loopbridge.hpp>` and a typical user file cost the compiler,",
           "against the Asio headers the public API needs and the same user file written by hand on",
           "Asio, measured in one run by `bench/compile_cost.py` (`bench/run.sh` runs it): non-blank",
           "preprocessed lines, the compiler's CPU time (user + system, median) and its peak memory",
           f"(median). Goal: at most {COMPILE_GOAL:g}x Asio on each.", ""]
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        tag = os.path.splitext(os.path.basename(path))[0]
        out += [f"On `{tag}` ({run['cpu']}, {run['cores']} CPUs; {run['compiler']}; {run['reps']} compiles "
                "of each file, alternating):", "",
                "| what | lines | CPU time | peak memory | ratios (lines, time, memory) | verdict |",
                "|---|---|---|---|---|---|"]
        for pair in run["pairs"]:
            ours, base = run["files"][pair["loopbridge"]], run["files"][pair["asio"]]
            ratios = [ours["lines"] / base["lines"], med(ours["cpu_s"]) / med(base["cpu_s"]),
                      med(ours["peak_mb"]) / med(base["peak_mb"])]
            worst = max(ratios)
            verdict = "met" if worst <= COMPILE_GOAL else f"**missed** (worst {worst:.2f}x)"
            for side, r in (("loopbridge", ours), ("Asio", base)):
                out.append(f"| {pair['what']}: {side} (`bench/compile/{pair[side.lower()]}`) | {r['lines']:,} | "
                           f"{med(r['cpu_s']):.2f} s | {med(r['peak_mb']):.0f} MB | "
                           + (" / ".join(f"{x:.2f}x" for x in ratios) + f" | {verdict} |" if side == "loopbridge"
                              else " | |"))
        out.append("")
    return out


def describe(run):
    m = run["machine"]
    progs = run.get("programs", {})
    cpp = progs.get("loopbridge_bench", {})
    py = progs.get("asyncio_bench", {})
    parts = [f"{m['cpu']}, {m['cores']} CPUs ({m['usable_cpus']} usable)", m["os"], f"kernel {m['kernel']}"]
    if cpp:
        parts.append(f"{cpp.get('compiler', '')} -O3, Boost {cpp.get('boost', '').replace('_', '.')}")
    if run.get("versions", {}).get("tokio"):
        parts.append(run["versions"]["tokio"])
    if py:
        parts.append(f"Python {py.get('python')}" + (f", uvloop {py['uvloop']}" if py.get("uvloop") else ""))
    return "; ".join(p for p in parts if p)


def chart(runs):
    """A 2x2 PNG: throughput and round trips of the first run, thread and pool scaling of the
    run with the most host-thread counts. Returns an error message, or None."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot is not installed (bench/run.sh installs gnuplot-nox)"
    ref = runs[0]
    scale = max(runs, key=lambda r: len({x["threads"] for x in r["records"] if x["threads"]}))
    tmp = tempfile.mkdtemp()
    panels = []

    def bars(name, rows, columns):
        """Writes the data file, without the columns this run has no figure for (gnuplot
        refuses a series with no points); returns how many columns it kept."""
        kept = [i for i in range(len(columns)) if any(values[i] is not None for _, values in rows)]
        with open(os.path.join(tmp, name), "w") as f:
            f.write("label " + " ".join(f'"{columns[i]}"' for i in kept) + "\n")
            for label, values in rows:
                f.write(f'"{label}" ' + " ".join("NaN" if values[i] is None else f"{values[i]:.6g}" for i in kept) + "\n")
        return len(kept)

    families = [("loopbridge", {"tp_callable": "loopbridge", "tp_coroutine": "loopbridge", "tp_post": "loopbridge"}),
                ("raw Asio", {"tp_callable": "asio_post_promise", "tp_coroutine": "asio_co_spawn",
                              "tp_post": "asio_post"}),
                ("Tokio", {"tp_coroutine": ["tokio_mt_oneshot", "tokio_ct_oneshot"],
                           "tp_post": ["tokio_mt_spawn", "tokio_ct_spawn"]}),
                ("asyncio", {"tp_callable": "asyncio_call_soon", "tp_coroutine": "asyncio_run_coroutine",
                             "tp_post": "asyncio_call_soon"}),
                ("uvloop", {"tp_callable": "uvloop_call_soon", "tp_coroutine": "uvloop_run_coroutine",
                            "tp_post": "uvloop_call_soon"})]

    def value(run, metric, variants, stat="value", **key):
        best = None
        for v in variants if isinstance(variants, list) else [variants]:
            r = find(run, metric, v, **key)
            if r and stat in r["stats"]:
                x = med(r["stats"][stat])
                better = best is None or (x > best if r["better"] == "higher" else x < best)
                best = x if better else best
        return best

    rows = [(WORKLOADS[m], [value(ref, m, fam[m], threads=1, placement="pinned") if m in fam else None
                            for _, fam in families])
            for m in ("tp_callable", "tp_coroutine", "tp_post")]
    if any(v for _, vs in rows for v in vs):
        panels.append(("tp.dat", bars("tp.dat", rows, [f for f, _ in families]), "throughput, 1 host thread (ops/s)", True))

    rt_fams = [("loopbridge", {"rt_callable": "loopbridge", "rt_coroutine": "loopbridge"}),
               ("raw Asio", {"rt_callable": "asio_post_promise", "rt_coroutine": "asio_co_spawn"}),
               ("Tokio", {"rt_coroutine": ["tokio_mt_oneshot", "tokio_ct_oneshot", "tokio_mt_block_on",
                                           "tokio_ct_block_on"]}),
               ("asyncio", {"rt_callable": "asyncio_call_soon", "rt_coroutine": "asyncio_run_coroutine"}),
               ("uvloop", {"rt_callable": "uvloop_call_soon", "rt_coroutine": "uvloop_run_coroutine"}),
               ("low-latency mode", {"rt_callable": "loopbridge_spin", "rt_coroutine": "loopbridge_spin"}),
               ("floors", {"rt_floor": ["atomic_spin"]})]
    rows = []
    for metric, place, label in (("rt_callable", "same_cpu", "callable, same CPU"),
                                 ("rt_coroutine", "same_cpu", "coroutine, same CPU"),
                                 ("rt_callable", "cross_cpu", "callable, 2 CPUs"),
                                 ("rt_coroutine", "cross_cpu", "coroutine, 2 CPUs")):
        cells = []
        for name, fam in rt_fams:
            m = "rt_floor" if name == "floors" else metric
            want = fam.get(m)
            cells.append(value(ref, m, want, "p50", placement=place) if want and (
                name != "floors" or place == "cross_cpu") else None)
        rows.append((label, cells))
    if any(v for _, vs in rows for v in vs):
        panels.append(("rt.dat", bars("rt.dat", rows, [f if f != "floors" else "spinning floor" for f, _ in rt_fams]), "round trip p50 (us)", True))

    threads = sorted({r["threads"] for r in scale["records"] if r["metric"] == "tp_coroutine" and r["threads"]})
    if len(threads) > 1:
        series = ["loopbridge", "asio_co_spawn", "tokio_mt_oneshot", "tokio_ct_oneshot", "asyncio_run_coroutine",
                  "uvloop_run_coroutine"]
        rows = [(str(t), [value(scale, "tp_coroutine", s, threads=t, placement="pinned") for s in series])
                for t in threads]
        panels.append(("threads.dat", bars("threads.dat", rows, series),
                       f"coroutines + futures vs host threads (ops/s), {scale['tag']}", False))

    pool_runs = [r for r in runs if any(x["metric"] == "pool_coroutine" for x in r["records"])]
    if pool_runs:
        prun = max(pool_runs, key=lambda r: len({x["loops"] for x in r["records"] if x["loops"]}))
        recs = [x for x in prun["records"] if x["metric"] == "pool_coroutine"]
        top = max(x["threads"] for x in recs)
        loops = sorted({x["loops"] for x in recs})
        series = ["loopbridge_pool", "asio_pool_co_spawn", "tokio_mt_oneshot"]
        rows = [(str(n), [value(prun, "pool_coroutine", s, threads=top, loops=n, placement="pinned")
                          for s in series]) for n in loops]
        panels.append(("pool.dat", bars("pool.dat", rows, series),
                       f"pool of N loops, {top} host threads, coroutines (ops/s), {prun['tag']}", False))

    script = ["set terminal pngcairo noenhanced size 1400,1000 font 'Sans,9'", f"set output '{CHART}'",
              "set multiplot layout 2,2", "set key top left font ',8'", "set grid ytics", "set logscale y",
              "set yrange [*:*]", "set format y '%.0s%c'"]
    for data, n, title, histogram in panels:
        script.append(f"set title \"{title}\"")
        path = os.path.join(tmp, data)
        if histogram:
            script += ["set key top left font ',8'", "set style data histograms", "set style histogram clustered gap 1",
                       "set style fill solid 0.8 border -1", "set xtics nomirror rotate by 0"]
            plots = [f"'{path}' using {i + 2}:xtic(1) title columnheader({i + 2})" for i in range(n)]
        else:
            script += ["set style data linespoints", "set xtics nomirror"]
            script.append("set key below maxrows 2 font ',8'")
            plots = [f"'{path}' using {i + 2}:xtic(1) title columnheader({i + 2}) lw 2" for i in range(n)]
        script.append("plot " + ", ".join(plots))
    script.append("unset multiplot")
    with open(os.path.join(tmp, "chart.gp"), "w") as f:
        f.write("\n".join(script) + "\n")
    os.makedirs(os.path.dirname(CHART), exist_ok=True)
    result = subprocess.run([gnuplot, os.path.join(tmp, "chart.gp")], capture_output=True, text=True)
    shutil.rmtree(tmp)
    if result.returncode != 0:
        return "gnuplot failed: " + result.stderr.strip()
    return None


def main():
    paths = sys.argv[1:] or sorted(glob.glob(os.path.join(ROOT, "docs/benchmarks/*.json")))
    if not paths:
        sys.exit("report.py: no result files (run bench/run.sh first)")
    runs = load(paths)
    # The reference run first: the one with the most kinds of measure.
    runs.sort(key=lambda r: -len({x["metric"] for x in r["records"]}))
    md = ["# Benchmarks", "",
          "What the safety costs against hand-rolled Asio plumbing, and how loopbridge compares",
          "with Tokio and Python asyncio, measured side by side in one run. Generated by",
          "`bench/report.py` from the result files in `docs/benchmarks/`; do not edit by hand.", "",
          "```sh", "bash bench/run.sh            # about ten minutes on 2 vCPUs; --quick: a few minutes", "```", "",
          "It installs what is missing (Debian packages), builds `bench/` (C++, static), builds",
          "`bench/tokio` offline against Debian's `librust-tokio-dev`, runs them with",
          "`bench/python/asyncio_bench.py` under the system Python (stdlib loop and uvloop),",
          "writes `docs/benchmarks/<machine>.json` and regenerates this page. On another machine",
          "(no network needed) copy the tree with `build/bench/bench/loopbridge_bench` and",
          "`build/bench/tokio_bench`, run `python3 bench/run.py --threads 1,2,4,8,16 --pool-loops",
          "1,2,4,8 --groups throughput,pool`, bring its JSON back to `docs/benchmarks/` and run",
          "`python3 bench/report.py`.", "",
          "On the 2-vCPU virtual machines a sleeping wake across CPUs costs tens of microseconds",
          "and on one CPU a few, so only ratios within one run and one placement mean anything;",
          "absolute figures move 10-30 % between runs.", "", "## Machines", "",
          "| run | machine | code measured | date | blocks per variant | other load before each round |",
          "|---|---|---|---|---|---|"]
    for run in runs:
        busy = ", ".join(f"{b:.0%}" for b in run.get("busy_before_rounds", []))
        if run.get("nice"):
            busy += f" (run at nice {run['nice']})"
        code = f"`{run['code']}`" if run.get("code") else "not recorded"
        md.append(f"| `{run['tag']}` | {describe(run)} | {code} | {run['date']} | "
                  f"{run['rounds'] * run['blocks_per_round']} ({run['size']}) | {busy} |")
    md.append("")
    newest = max(run["date"] for run in runs)
    for run in runs:
        rows, misses = target_rows(run)
        if not rows:
            continue
        md += [f"## Targets on `{run['tag']}`", "",
               "Ratio: loopbridge ÷ baseline, medians, same run and placement (range over blocks in",
               "brackets). Where a target names two Tokio runtimes, the faster is the baseline.", ""]
        if run["date"] < newest:
            md += [f"This run measured the code of {run['date']}, older than the newest run's ({newest});",
                   "the explanations of misses below describe the current code.", ""]
        md += ["| measure | loopbridge | baseline | ratio | goal | verdict |", "|---|---|---|---|---|---|"] + rows + [""]
        if misses:
            md += ["### Where a target is missed, and what bounds it", ""]
            for t, base, ratio, paired in misses:
                note = BOUNDS.get(t["id"], "Not analysed yet.")
                md.append(f"- **{t['what']}, against {base}: {ratio:.2f}x** (block by block, each block's "
                          f"loopbridge against the same block's baseline: median {paired:.2f}x). {note}")
            md.append("")
    problem = chart(runs)
    if problem:
        print(f"report.py: no chart: {problem}", file=sys.stderr)
        md += [f"(No chart: {problem}.)", ""]
    else:
        md += ["![throughput, round trips and scaling](benchmarks/chart.png)", ""]
    for run in runs:
        section = latency_tables(run)
        for place in PLACEMENTS:
            for metric in ("tp_callable", "tp_coroutine", "tp_post"):
                section += scaling_table(run, metric, "threads", placement=place)
        loops = sorted({r["loops"] for r in run["records"] if r["loops"]})
        for n in loops:
            for place in PLACEMENTS:
                for metric in ("pool_callable", "pool_coroutine"):
                    t = scaling_table(run, metric, "threads", fixed=n, placement=place)
                    if t:
                        t[0] = t[0].replace("| ", f"| pool of {n}: ", 1)
                    section += t
        section += lifecycle_table(run)
        if section:
            md += [f"## All figures on `{run['tag']}`", "", "Medians over blocks."] + [""] + section
    md += compile_section()
    md += [FAST, HOW]
    with open(DOC, "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    print(f"report.py: wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
