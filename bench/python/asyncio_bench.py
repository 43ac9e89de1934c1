"""Python asyncio baselines for loopbridge's benchmarks.

The workloads of bench/loopbridge_bench, measured the same way (same task counts, batch
shape, CPU placement and statistics), on an asyncio event loop running forever on its own
thread: the stdlib loop and uvloop, alternated block by block. A host thread reaches the
loop the two documented ways: asyncio.run_coroutine_threadsafe(coro, loop).result() and
loop.call_soon_threadsafe(fn) with a concurrent.futures.Future that fn completes.

Run it with the system interpreter (Debian's python3-uvloop is installed for it); without
uvloop the uvloop variants are skipped with a message. Writes one JSON file that
bench/run.py merges.
"""

import argparse
import asyncio
import concurrent.futures
import json
import os
import sys
import threading
import time
import tracemalloc

try:
    import uvloop
except ImportError:
    uvloop = None

CPUS = sorted(os.sched_getaffinity(0))


def cpu(k):
    """CPU k of the placement rules: the k-th CPU this process may use, as in the other programs."""
    return CPUS[k % len(CPUS)]


def pin(cpu_id):
    if cpu_id is not None:
        os.sched_setaffinity(0, {cpu_id})  # 0: the calling thread only


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


class Results:
    def __init__(self):
        self.records = {}

    def add(self, metric, variant, placement, threads, loops, unit, better, stat, value):
        if not RECORDING:
            return
        key = (metric, variant, placement, threads, loops)
        record = self.records.setdefault(key, {"unit": unit, "better": better, "stats": {}})
        record["stats"].setdefault(stat, []).append(value)

    def add_latency(self, metric, variant, placement, samples_us, with_p999):
        s = sorted(samples_us)
        self.add(metric, variant, placement, None, None, "us", "lower", "p50", percentile(s, 0.5))
        self.add(metric, variant, placement, None, None, "us", "lower", "p99", percentile(s, 0.99))
        if with_p999:
            self.add(metric, variant, placement, None, None, "us", "lower", "p999", percentile(s, 0.999))

    def to_json(self, config):
        records = []
        for (metric, variant, placement, threads, loops), r in sorted(
                self.records.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
            records.append({"metric": metric, "variant": variant, "placement": placement,
                            "threads": threads, "loops": loops, **r})
        return {"program": "asyncio_bench", "config": config, "records": records}


RECORDING = True  # False during alternate()'s warm-up block: Results.add drops what it gets


def alternate(blocks, variants):
    """Runs one warm-up block whose results are dropped (the first variant in a process would
    pay for its cold heap and caches), then `blocks` blocks of each variant once. Each block
    starts one variant further along and every other block runs backwards, so that every
    variant sees every position in the order and follows two different variants."""
    global RECORDING
    RECORDING = False
    for variant in variants:
        variant()
    RECORDING = True
    n = len(variants)
    for b in range(blocks):
        for i in range(n):
            variants[(b + i) % n if b % 2 == 0 else (b + n - 1 - i) % n]()


class LoopThread:
    """An event loop running forever on its own thread (pinned to cpu_id unless None)."""

    def __init__(self, kind, cpu_id):
        self.kind = kind
        self.loop = uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()
        running = threading.Event()

        def run():
            pin(cpu_id)
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(running.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name=kind)
        self.thread.start()
        running.wait()

    def stop(self):
        """What asyncio.run does at the end: cancel every task, wait for them, stop, join."""

        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def call(self):
        """call_soon_threadsafe + a concurrent.futures.Future: Asio's post + std::promise."""
        f = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(f.set_result, 1)
        return f

    def submit(self):
        return asyncio.run_coroutine_threadsafe(one(), self.loop)

    def warm_up(self):
        for _ in range(200):
            self.call().result()
            self.submit().result()


async def one():
    return 1


async def now_ns():
    return time.perf_counter_ns()


def kinds():
    return ["asyncio", "uvloop"] if uvloop else ["asyncio"]


def latency(o, results):
    placements = [("same_cpu", 0, 0)] + ([("cross_cpu", 0, 1)] if len(CPUS) > 1 else [])
    for placement, host_cpu, loop_cpu in placements:
        pin(cpu(host_cpu))
        loops = [LoopThread(kind, cpu(loop_cpu)) for kind in kinds()]
        for lt in loops:
            lt.warm_up()
        variants = []
        for lt in loops:
            def round_trips(start, lt=lt):
                samples = []
                for _ in range(o.samples):
                    t = time.perf_counter_ns()
                    start(lt).result()
                    samples.append((time.perf_counter_ns() - t) / 1e3)
                return samples

            def lags(start, lt=lt):
                samples = []
                for _ in range(o.samples):
                    t = time.perf_counter_ns()
                    started = start(lt).result()
                    samples.append(max(0, started - t) / 1e3)
                return samples

            def stamp_call(lt):
                f = concurrent.futures.Future()
                lt.loop.call_soon_threadsafe(lambda: f.set_result(time.perf_counter_ns()))
                return f

            k = lt.kind
            variants += [
                lambda k=k, rt=round_trips: results.add_latency(
                    "rt_callable", f"{k}_call_soon", placement, rt(LoopThread.call), True),
                lambda k=k, rt=round_trips: results.add_latency(
                    "rt_coroutine", f"{k}_run_coroutine", placement, rt(LoopThread.submit), True),
                lambda k=k, lg=lags: results.add_latency(
                    "lag_callable", f"{k}_call_soon", placement, lg(stamp_call), False),
                lambda k=k, lg=lags, lt=lt: results.add_latency(
                    "lag_coroutine", f"{k}_run_coroutine", placement,
                    lg(lambda lt: asyncio.run_coroutine_threadsafe(now_ns(), lt.loop)), False),
            ]
        alternate(o.blocks, variants)
        for lt in loops:
            lt.stop()
    pin(cpu(0))


def run_hosts(hosts, host_cpu, body):
    """Runs body(host) on `hosts` threads pinned by host_cpu, released together; returns the
    release time and the time the last one finished (perf_counter_ns)."""
    barrier = threading.Barrier(hosts + 1)
    ends = []

    def host(h):
        pin(cpu(host_cpu(h)))
        barrier.wait()
        body(h)
        ends.append(time.perf_counter_ns())

    threads = [threading.Thread(target=host, args=(h,)) for h in range(hosts)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for t in threads:
        t.join()
    return start, max(ends)


def futures_throughput(o, hosts, host_cpu, start_one):
    total = []

    def body(_):
        s = 0
        for _ in range(o.ops // o.batch):
            futures = [start_one() for _ in range(o.batch)]
            for f in futures:
                s += f.result()
        total.append(s)

    start, end = run_hosts(hosts, host_cpu, body)
    assert sum(total) == hosts * o.ops
    return hosts * o.ops / ((end - start) / 1e9)


def post_throughput(lt, o, hosts, host_cpu):
    expected = hosts * o.ops
    state = {"done": 0, "at": None}
    finished = threading.Event()

    def count():  # runs on the loop thread only
        state["done"] += 1
        if state["done"] == expected:
            state["at"] = time.perf_counter_ns()
            finished.set()

    def body(_):
        for _ in range(o.ops):
            lt.loop.call_soon_threadsafe(count)

    start, _ = run_hosts(hosts, host_cpu, body)
    finished.wait()
    return expected / ((state["at"] - start) / 1e9)


def throughput(o, results):
    n = len(CPUS)
    loop_cpu = n - 1

    def host_cpu(h):
        return h % (n - 1) if n > 1 else 0

    pin(cpu(0))
    loops = [LoopThread(kind, cpu(loop_cpu)) for kind in kinds()]
    for lt in loops:
        lt.warm_up()
    for hosts in o.threads:
        variants = []
        for lt in loops:
            k = lt.kind
            variants += [
                lambda k=k, lt=lt: results.add("tp_callable", f"{k}_call_soon", "", hosts, None, "ops/s", "higher",
                                               "value", futures_throughput(o, hosts, host_cpu, lt.call)),
                lambda k=k, lt=lt: results.add("tp_coroutine", f"{k}_run_coroutine", "", hosts, None, "ops/s",
                                               "higher", "value", futures_throughput(o, hosts, host_cpu, lt.submit)),
                lambda k=k, lt=lt: results.add("tp_post", f"{k}_call_soon", "", hosts, None, "ops/s", "higher",
                                               "value", post_throughput(lt, o, hosts, host_cpu)),
            ]
        alternate(o.blocks, variants)
    for lt in loops:
        lt.stop()


def park_sleepers(lt, n):
    """n tasks submitted from this thread, each parked on a one-hour sleep."""
    started = [0]

    async def sleeper():
        started[0] += 1
        await asyncio.sleep(3600)

    futures = [asyncio.run_coroutine_threadsafe(sleeper(), lt.loop) for _ in range(n)]
    while started[0] < n:
        time.sleep(0.0002)
    time.sleep(0.001)
    return futures


def lifecycle(o, results):
    pin(cpu(0))
    variants = []
    for kind in kinds():
        def start_stop(kind=kind):
            t = time.perf_counter_ns()
            for _ in range(20):
                LoopThread(kind, None).stop()  # the thread inherits this thread's CPU
            results.add("start_stop", kind, "", None, None, "us", "lower", "value",
                        (time.perf_counter_ns() - t) / 1e3 / 20)

        def stop_pending(kind=kind):
            lt = LoopThread(kind, cpu(len(CPUS) - 1))
            lt.warm_up()
            futures = park_sleepers(lt, o.pending)
            t = time.perf_counter_ns()
            lt.stop()
            ms = (time.perf_counter_ns() - t) / 1e6
            if not all(f.done() for f in futures):
                sys.exit("asyncio_bench: a future did not settle at stop")
            results.add("stop_pending", f"{kind}_cancel_all", "", None, None, "ms", "lower", "value", ms)

        variants += [start_stop, stop_pending]

    def bare_thread():
        t = time.perf_counter_ns()
        for _ in range(20):
            th = threading.Thread(target=lambda: None)
            th.start()
            th.join()
        results.add("start_stop", "python_thread", "", None, None, "us", "lower", "value",
                    (time.perf_counter_ns() - t) / 1e3 / 20)

    variants.append(bare_thread)
    alternate(o.blocks, variants)


def memory(o, results):
    pin(cpu(0))
    tracemalloc.start()
    for _ in range(min(o.blocks, 3)):
        for kind in kinds():
            lt = LoopThread(kind, cpu(len(CPUS) - 1))
            lt.warm_up()
            warm = park_sleepers(lt, 1)
            before = tracemalloc.get_traced_memory()[0]
            futures = park_sleepers(lt, o.pending)
            per_task = (tracemalloc.get_traced_memory()[0] - before) / o.pending
            lt.stop()
            del futures, warm
            results.add("mem_pending", f"{kind}_run_coroutine", "", None, None, "bytes", "lower", "value", per_task)
    tracemalloc.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--groups", default="latency,throughput,lifecycle")
    p.add_argument("--threads", default="1,2,4")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--ops", type=int, default=20000)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--pending", type=int, default=10000)
    p.add_argument("--pool-loops", default="")  # accepted for a uniform command line; no pool here
    p.add_argument("--json")
    o = p.parse_args()
    o.threads = [int(x) for x in o.threads.split(",")]
    if o.ops % o.batch:
        sys.exit("--ops must be a multiple of --batch")
    if uvloop is None:
        print(f"asyncio_bench: uvloop is not importable by {sys.executable}: skipping the uvloop variants",
              file=sys.stderr)
    results = Results()
    groups = {"latency": latency, "throughput": throughput, "lifecycle": lifecycle, "memory": memory}
    for g in o.groups.split(","):
        if g == "pool":
            continue  # asyncio has no loop pool to compare
        t = time.monotonic()
        groups[g](o, results)
        print(f"asyncio_bench: {g} done in {time.monotonic() - t:.1f} s", file=sys.stderr)
    config = {"blocks": o.blocks, "batch": o.batch, "ops": o.ops, "samples": o.samples, "pending": o.pending,
              "threads": o.threads, "cpus": len(CPUS), "python": sys.version.split()[0],
              "uvloop": uvloop.__version__ if uvloop else None}
    text = json.dumps(results.to_json(config), indent=1)
    if o.json:
        with open(o.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
