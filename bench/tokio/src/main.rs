//! Tokio baselines for loopbridge's benchmarks: the workloads of bench/loopbridge_bench,
//! measured the same way (same task counts, batch shape, CPU placement, statistics), on a
//! Tokio runtime whose tasks run on one pinned thread, as a BackgroundLoop's do.
//!
//! Two runtime flavours, alternated block by block:
//! - `tokio_mt`: `Builder::new_multi_thread().worker_threads(1)`, what `Runtime::new()` and
//!   `#[tokio::main]` give, with one worker;
//! - `tokio_ct`: `Builder::new_current_thread()` driven by a dedicated thread blocked in
//!   `block_on` (the "spawning things on a runtime" pattern of Tokio's bridging guide).
//!
//! A host thread waits for a task either through a oneshot channel the task sends on
//! (`blocking_recv`) or by `Handle::block_on` on the task's JoinHandle.
//! Usage: see `--help`; writes one JSON file that bench/run.py merges.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

// ---------------------------------------------------------------------------------------
// Options, CPUs, statistics, results

struct Options {
    blocks: usize,
    groups: Vec<String>,
    threads: Vec<usize>,
    pool_loops: Vec<usize>,
    batch: usize,
    ops: usize,
    samples: usize,
    pending: usize,
    json: Option<String>,
}

fn parse_list(text: &str) -> Vec<usize> {
    text.split(',').map(|s| s.trim().parse().expect("a comma-separated list of numbers")).collect()
}

fn parse_options() -> Options {
    let mut o = Options {
        blocks: 5,
        groups: ["latency", "throughput", "lifecycle", "pool"].iter().map(|s| s.to_string()).collect(),
        threads: vec![1, 2, 4],
        pool_loops: vec![1, 2, 4],
        batch: 1000,
        ops: 20000,
        samples: 2000,
        pending: 10000,
        json: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().unwrap_or_else(|| panic!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--blocks" => o.blocks = value().parse().unwrap(),
            "--groups" => o.groups = value().split(',').map(|s| s.to_string()).collect(),
            "--threads" => o.threads = parse_list(&value()),
            "--pool-loops" => o.pool_loops = parse_list(&value()),
            "--batch" => o.batch = value().parse().unwrap(),
            "--ops" => o.ops = value().parse().unwrap(),
            "--samples" => o.samples = value().parse().unwrap(),
            "--pending" => o.pending = value().parse().unwrap(),
            "--json" => o.json = Some(value()),
            "--help" | "-h" => {
                println!(
                    "tokio_bench [--blocks N] [--groups latency,throughput,lifecycle,memory,pool] \
                     [--threads 1,2,4] [--pool-loops 1,2,4] [--batch N] [--ops N] [--samples N] \
                     [--pending N] [--json FILE]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown option {}", other),
        }
        i += 2;
    }
    assert!(o.ops % o.batch == 0, "--ops must be a multiple of --batch");
    o
}

/// The CPUs this process may run on when it starts, in order; CPU k of the placement rules
/// is the k-th of them (modulo their count), as in the C++ and Python programs.
static CPUS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn init_cpus() {
    let allowed = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    };
    *CPUS.lock().unwrap() = allowed;
}

fn cpu(k: usize) -> usize {
    let cpus = CPUS.lock().unwrap();
    cpus[k % cpus.len()]
}

fn cpu_count() -> usize {
    CPUS.lock().unwrap().len()
}

/// A CPU id that lets the OS place the thread on any CPU the process may use.
const ANY_CPU: usize = usize::MAX;

/// Pins this thread to `cpu_id` (every allowed CPU for ANY_CPU); None leaves it where it is.
fn pin(cpu_id: Option<usize>) {
    if let Some(c) = cpu_id {
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if c == ANY_CPU {
                for &allowed in CPUS.lock().unwrap().iter() {
                    libc::CPU_SET(allowed, &mut set);
                }
            } else {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// Where the threads of a measurement run, as in the C++ program: pinned (the loop on the
/// last CPU, every host on the first), spread (hosts round robin over the CPUs other than
/// the loop's; several hosts and at least two such CPUs) and os (nothing pinned).
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    Pinned,
    Spread,
    Os,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Pinned => "pinned",
            Placement::Spread => "spread",
            Placement::Os => "os",
        }
    }
    fn all_for(hosts: usize) -> Vec<Placement> {
        if hosts > 1 && cpu_count() >= 3 {
            vec![Placement::Pinned, Placement::Spread, Placement::Os]
        } else {
            vec![Placement::Pinned, Placement::Os]
        }
    }
    fn loop_cpu(self) -> usize {
        if self == Placement::Os { ANY_CPU } else { cpu(cpu_count() - 1) }
    }
    fn host_cpu(self, h: usize) -> usize {
        let n = cpu_count();
        match self {
            Placement::Pinned => cpu(0),
            Placement::Spread => cpu(h % if n > 1 { n - 1 } else { n }),
            Placement::Os => ANY_CPU,
        }
    }
}

/// The element at rank floor(p * n) of the sorted samples (the same rule in every program).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    metric: String,
    variant: String,
    placement: String,
    threads: usize,
    loops: usize,
}

struct Record {
    unit: &'static str,
    better: &'static str,
    stats: BTreeMap<String, Vec<f64>>,
}

#[derive(Default)]
struct Results {
    records: BTreeMap<Key, Record>,
}

impl Results {
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, metric: &str, variant: &str, placement: &str, threads: usize, loops: usize,
           unit: &'static str, better: &'static str, stat: &str, value: f64) {
        if !RECORDING.load(Ordering::Relaxed) {
            return;
        }
        let key = Key {
            metric: metric.into(),
            variant: variant.into(),
            placement: placement.into(),
            threads,
            loops,
        };
        let record = self.records.entry(key).or_insert_with(|| Record { unit, better, stats: BTreeMap::new() });
        record.stats.entry(stat.into()).or_default().push(value);
    }

    fn add_latency(&mut self, metric: &str, variant: &str, placement: &str, samples_us: Vec<f64>, with_p999: bool) {
        let s = sorted(samples_us);
        self.add(metric, variant, placement, 0, 0, "us", "lower", "p50", percentile(&s, 0.5));
        self.add(metric, variant, placement, 0, 0, "us", "lower", "p99", percentile(&s, 0.99));
        if with_p999 {
            self.add(metric, variant, placement, 0, 0, "us", "lower", "p999", percentile(&s, 0.999));
        }
    }

    fn to_json(&self, options: &Options) -> String {
        let list = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
        let mut out = String::new();
        out += "{\n  \"program\": \"tokio_bench\",\n";
        out += &format!(
            "  \"config\": {{\"blocks\": {}, \"batch\": {}, \"ops\": {}, \"samples\": {}, \"pending\": {}, \
             \"threads\": [{}], \"pool_loops\": [{}], \"cpus\": {}}},\n",
            options.blocks, options.batch, options.ops, options.samples, options.pending,
            list(&options.threads), list(&options.pool_loops), cpu_count()
        );
        out += "  \"records\": [\n";
        let mut first = true;
        for (key, record) in &self.records {
            if !first {
                out += ",\n";
            }
            first = false;
            let number = |n: usize| if n == 0 { "null".to_string() } else { n.to_string() };
            let stats: Vec<String> = record
                .stats
                .iter()
                .map(|(name, values)| {
                    let v: Vec<String> = values.iter().map(|x| format!("{:.6e}", x)).collect();
                    format!("\"{}\": [{}]", name, v.join(", "))
                })
                .collect();
            out += &format!(
                "    {{\"metric\": \"{}\", \"variant\": \"{}\", \"placement\": \"{}\", \"threads\": {}, \
                 \"loops\": {}, \"unit\": \"{}\", \"better\": \"{}\", \"stats\": {{{}}}}}",
                key.metric, key.variant, key.placement, number(key.threads), number(key.loops),
                record.unit, record.better, stats.join(", ")
            );
        }
        out += "\n  ]\n}\n";
        out
    }
}

/// False during alternate()'s warm-up block: Results::add drops what it is given.
static RECORDING: AtomicBool = AtomicBool::new(true);

/// Runs one warm-up block whose results are dropped (the first variant in a process would
/// pay for its cold heap and caches), then `blocks` blocks of each variant once. Each block
/// starts one variant further along and every other block runs backwards, so that every
/// variant sees every position in the order and follows two different variants.
fn alternate<'a>(blocks: usize, variants: &mut [Box<dyn FnMut() + 'a>]) {
    let n = variants.len();
    RECORDING.store(false, Ordering::Relaxed);
    for variant in variants.iter_mut() {
        variant();
    }
    RECORDING.store(true, Ordering::Relaxed);
    for b in 0..blocks {
        for i in 0..n {
            let index = if b % 2 == 0 { (b + i) % n } else { (b + n - 1 - i) % n };
            (variants[index])();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The loop under test

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Multi,
    Current,
}

const FLAVORS: [Flavor; 2] = [Flavor::Multi, Flavor::Current];

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Multi => "tokio_mt",
            Flavor::Current => "tokio_ct",
        }
    }
}

/// A Tokio runtime whose task threads are pinned to `cpus` (one worker per entry; None
/// leaves a thread where it starts: on its creator's CPUs).
struct Loop {
    handle: Handle,
    runtime: Option<Runtime>,
    driver: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Loop {
    fn new(flavor: Flavor, cpus: Vec<Option<usize>>) -> Loop {
        match flavor {
            Flavor::Multi => {
                let next = AtomicUsize::new(0);
                let workers = cpus.len();
                let runtime = Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .on_thread_start(move || pin(cpus[next.fetch_add(1, Ordering::Relaxed) % cpus.len()]))
                    .build()
                    .expect("a multi-thread runtime");
                Loop { handle: runtime.handle().clone(), runtime: Some(runtime), driver: None }
            }
            Flavor::Current => {
                assert_eq!(cpus.len(), 1, "a current-thread runtime has one thread");
                let runtime = Builder::new_current_thread().enable_all().build().expect("a current-thread runtime");
                let handle = runtime.handle().clone();
                let (stop, stopped) = oneshot::channel::<()>();
                let cpu_id = cpus[0];
                let thread = std::thread::spawn(move || {
                    pin(cpu_id);
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    drop(runtime); // drops the tasks still pending, as the multi-thread drop does
                });
                Loop { handle, runtime: None, driver: Some((stop, thread)) }
            }
        }
    }

    /// Drops the runtime: pending tasks are dropped (their JoinHandles settle with a
    /// cancellation) and the runtime's threads are joined.
    fn shutdown(mut self) {
        if let Some(runtime) = self.runtime.take() {
            drop(runtime);
        }
        if let Some((stop, thread)) = self.driver.take() {
            let _ = stop.send(());
            thread.join().expect("the runtime thread");
        }
    }

    fn round_trip_oneshot(&self) -> u64 {
        let (tx, rx) = oneshot::channel::<u64>();
        self.handle.spawn(async move {
            let _ = tx.send(1);
        });
        rx.blocking_recv().unwrap()
    }

    fn round_trip_block_on(&self) -> u64 {
        self.handle.block_on(self.handle.spawn(async { 1u64 })).unwrap()
    }

    fn warm_up(&self) {
        for _ in 0..200 {
            self.round_trip_oneshot();
        }
    }
}

fn us_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------------------
// Round trips and submit-to-start lag, host and loop on the same CPU and on different CPUs

fn latency(o: &Options, results: &mut Results) {
    let mut placements = vec![("same_cpu", cpu(0), cpu(0))];
    if cpu_count() > 1 {
        placements.push(("cross_cpu", cpu(0), cpu(1)));
    }
    placements.push(("os", ANY_CPU, ANY_CPU));
    for (placement, host_cpu, loop_cpu) in placements {
        pin(Some(host_cpu));
        let loops: Vec<(Flavor, Loop)> =
            FLAVORS.iter().map(|&f| (f, Loop::new(f, vec![Some(loop_cpu)]))).collect();
        for (_, l) in &loops {
            l.warm_up();
        }
        let n = o.samples;
        let results_cell = std::cell::RefCell::new(&mut *results);
        let mut variants: Vec<Box<dyn FnMut() + '_>> = Vec::new();
        for (flavor, l) in &loops {
            let r = &results_cell;
            variants.push(Box::new(move || {
                let s: Vec<f64> = (0..n)
                    .map(|_| {
                        let t = Instant::now();
                        l.round_trip_oneshot();
                        us_since(t)
                    })
                    .collect();
                r.borrow_mut().add_latency("rt_coroutine", &format!("{}_oneshot", flavor.name()), placement, s, true);
            }));
            variants.push(Box::new(move || {
                let s: Vec<f64> = (0..n)
                    .map(|_| {
                        let t = Instant::now();
                        l.round_trip_block_on();
                        us_since(t)
                    })
                    .collect();
                r.borrow_mut().add_latency("rt_coroutine", &format!("{}_block_on", flavor.name()), placement, s, true);
            }));
            variants.push(Box::new(move || {
                let s: Vec<f64> = (0..n)
                    .map(|_| {
                        let (tx, rx) = oneshot::channel::<Instant>();
                        let t = Instant::now();
                        l.handle.spawn(async move {
                            let _ = tx.send(Instant::now());
                        });
                        let started = rx.blocking_recv().unwrap();
                        started.saturating_duration_since(t).as_secs_f64() * 1e6
                    })
                    .collect();
                r.borrow_mut().add_latency("lag_coroutine", &format!("{}_spawn", flavor.name()), placement, s, false);
            }));
        }
        alternate(o.blocks, &mut variants);
        drop(variants);
        for (_, l) in loops {
            l.shutdown();
        }
    }
    pin(Some(cpu(0)));
}

// ---------------------------------------------------------------------------------------
// Throughput: `hosts` threads, each submitting `ops` tasks in batches of `batch`

/// Runs `body(host)` on `hosts` threads placed on `host_cpu(host)`, released together; returns
/// the release time and the time the last one finished.
fn run_hosts<F: Fn(usize) + Sync>(hosts: usize, host_cpu: &dyn Fn(usize) -> usize, body: F) -> (Instant, Instant) {
    let ready = AtomicUsize::new(0);
    let go = AtomicBool::new(false);
    let ends = Mutex::new(Vec::with_capacity(hosts));
    let mut start = Instant::now();
    std::thread::scope(|s| {
        for h in 0..hosts {
            let cpu_id = host_cpu(h);
            let (ready, go, ends, body) = (&ready, &go, &ends, &body);
            s.spawn(move || {
                pin(Some(cpu_id));
                ready.fetch_add(1, Ordering::AcqRel);
                while !go.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                body(h);
                ends.lock().unwrap().push(Instant::now());
            });
        }
        while ready.load(Ordering::Acquire) < hosts {
            std::thread::yield_now();
        }
        start = Instant::now();
        go.store(true, Ordering::Release);
    });
    let end = *ends.lock().unwrap().iter().max().unwrap();
    (start, end)
}

/// Spawn + oneshot, `batch` in flight per host; ops/s over all hosts.
fn futures_throughput(handle: &Handle, o: &Options, hosts: usize, host_cpu: &dyn Fn(usize) -> usize, block_on: bool) -> f64 {
    let total = AtomicU64::new(0);
    let (start, end) = run_hosts(hosts, host_cpu, |_| {
        let mut sum = 0u64;
        for _ in 0..o.ops / o.batch {
            if block_on {
                let joins: Vec<_> = (0..o.batch).map(|_| handle.spawn(async { 1u64 })).collect();
                for j in joins {
                    sum += handle.block_on(j).unwrap();
                }
            } else {
                let receivers: Vec<_> = (0..o.batch)
                    .map(|_| {
                        let (tx, rx) = oneshot::channel::<u64>();
                        handle.spawn(async move {
                            let _ = tx.send(1);
                        });
                        rx
                    })
                    .collect();
                for rx in receivers {
                    sum += rx.blocking_recv().unwrap();
                }
            }
        }
        total.fetch_add(sum, Ordering::Relaxed);
    });
    assert_eq!(total.load(Ordering::Relaxed) as usize, hosts * o.ops);
    (hosts * o.ops) as f64 / (end - start).as_secs_f64()
}

/// Fire-and-forget spawns (JoinHandle dropped); ends when the last task has run, as timed
/// by that task.
fn post_throughput(handle: &Handle, o: &Options, hosts: usize, host_cpu: &dyn Fn(usize) -> usize) -> f64 {
    let expected = hosts * o.ops;
    let done = Arc::new(AtomicUsize::new(0));
    let finished_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let waiter = std::thread::current();
    let (start, _) = run_hosts(hosts, host_cpu, |_| {
        for _ in 0..o.ops {
            let (done, finished_at, waiter) = (done.clone(), finished_at.clone(), waiter.clone());
            drop(handle.spawn(async move {
                if done.fetch_add(1, Ordering::Relaxed) + 1 == expected {
                    *finished_at.lock().unwrap() = Some(Instant::now());
                    waiter.unpark();
                }
            }));
        }
    });
    while finished_at.lock().unwrap().is_none() {
        std::thread::park();
    }
    let end = finished_at.lock().unwrap().unwrap();
    expected as f64 / (end - start).as_secs_f64()
}

fn throughput(o: &Options, results: &mut Results) {
    pin(Some(cpu(0)));
    for &hosts in &o.threads {
        for placement in Placement::all_for(hosts) {
            let loops: Vec<(Flavor, Loop)> =
                FLAVORS.iter().map(|&f| (f, Loop::new(f, vec![Some(placement.loop_cpu())]))).collect();
            for (_, l) in &loops {
                l.warm_up();
            }
            let host_cpu = move |h: usize| placement.host_cpu(h);
            let at = placement.name();
            let results_cell = std::cell::RefCell::new(&mut *results);
            let mut variants: Vec<Box<dyn FnMut() + '_>> = Vec::new();
            for (flavor, l) in &loops {
                let r = &results_cell;
                let name = flavor.name();
                variants.push(Box::new(move || {
                    let v = futures_throughput(&l.handle, o, hosts, &host_cpu, false);
                    r.borrow_mut().add("tp_coroutine", &format!("{}_oneshot", name), at, hosts, 0, "ops/s", "higher", "value", v);
                }));
                variants.push(Box::new(move || {
                    let v = futures_throughput(&l.handle, o, hosts, &host_cpu, true);
                    r.borrow_mut().add("tp_coroutine", &format!("{}_block_on", name), at, hosts, 0, "ops/s", "higher", "value", v);
                }));
                variants.push(Box::new(move || {
                    let v = post_throughput(&l.handle, o, hosts, &host_cpu);
                    r.borrow_mut().add("tp_post", &format!("{}_spawn", name), at, hosts, 0, "ops/s", "higher", "value", v);
                }));
            }
            alternate(o.blocks, &mut variants);
            drop(variants);
            for (_, l) in loops {
                l.shutdown();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Start + stop of an empty runtime; stop with pending tasks; memory per pending task

fn spawn_sleepers(l: &Loop, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let started = Arc::new(AtomicUsize::new(0));
    let mut joins = Vec::with_capacity(n);
    for _ in 0..n {
        let started = started.clone();
        joins.push(l.handle.spawn(async move {
            started.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }));
    }
    while started.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_millis(1)); // the last task reaches its timer
    joins
}

fn lifecycle(o: &Options, results: &mut Results) {
    let ncpu = cpu_count();
    pin(Some(cpu(0)));
    let results_cell = std::cell::RefCell::new(&mut *results);
    let mut variants: Vec<Box<dyn FnMut() + '_>> = Vec::new();
    for flavor in FLAVORS {
        let r = &results_cell;
        // Threads created here inherit the coordinator's CPU, as in the other programs.
        variants.push(Box::new(move || {
            const N: usize = 20;
            let t = Instant::now();
            for _ in 0..N {
                Loop::new(flavor, vec![None]).shutdown();
            }
            r.borrow_mut().add("start_stop", flavor.name(), "", 0, 0, "us", "lower", "value", us_since(t) / N as f64);
        }));
        variants.push(Box::new(move || {
            let l = Loop::new(flavor, vec![Some(cpu(ncpu - 1))]);
            l.warm_up();
            let joins = spawn_sleepers(&l, o.pending);
            let t = Instant::now();
            l.shutdown();
            let ms = us_since(t) / 1e3;
            assert!(joins.iter().all(|j| j.is_finished()), "a JoinHandle did not settle");
            r.borrow_mut().add("stop_pending", &format!("{}_drop", flavor.name()), "", 0, 0, "ms", "lower", "value", ms);
        }));
    }
    alternate(o.blocks, &mut variants);
}

fn heap_in_use() -> f64 {
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as f64
}

fn memory(o: &Options, results: &mut Results) {
    pin(Some(cpu(0)));
    for _ in 0..o.blocks.min(3) {
        for flavor in FLAVORS {
            let l = Loop::new(flavor, vec![Some(cpu(cpu_count() - 1))]);
            l.warm_up();
            let warm = spawn_sleepers(&l, 1); // the timer driver's first entry
            let before = heap_in_use();
            let joins = spawn_sleepers(&l, o.pending);
            let bytes = (heap_in_use() - before) / o.pending as f64;
            l.shutdown();
            drop((joins, warm));
            results.add("mem_pending", &format!("{}_spawn", flavor.name()), "", 0, 0, "bytes", "lower", "value", bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pools: a multi-thread runtime with `loops` workers against loopbridge's LoopPool

fn pool(o: &Options, results: &mut Results) {
    let ncpu = cpu_count();
    pin(Some(cpu(0)));
    for &loops in &o.pool_loops {
        // Pinned as the C++ pools are (workers on the last CPUs, hosts on the ones they
        // leave), and placed by the OS.
        for pinned in [true, false] {
            let worker_cpus: Vec<Option<usize>> = (0..loops)
                .map(|i| Some(if pinned { cpu((ncpu * loops - 1 - i) % ncpu) } else { ANY_CPU }))
                .collect();
            let l = Loop::new(Flavor::Multi, worker_cpus);
            l.warm_up();
            let host_cpu = move |h: usize| {
                if !pinned {
                    ANY_CPU
                } else if ncpu > loops {
                    cpu(h % (ncpu - loops))
                } else {
                    cpu(h % ncpu)
                }
            };
            let at = if pinned { "pinned" } else { "os" };
            for &hosts in &o.threads {
                for _ in 0..o.blocks {
                    let v = futures_throughput(&l.handle, o, hosts, &host_cpu, false);
                    results.add("pool_coroutine", "tokio_mt_oneshot", at, hosts, loops, "ops/s", "higher", "value", v);
                }
            }
            l.shutdown();
        }
    }
}

fn main() {
    let o = parse_options();
    init_cpus();
    let only_memory = o.groups.len() == 1 && o.groups[0] == "memory";
    if o.groups.iter().any(|g| g == "memory") {
        assert!(only_memory, "run the memory group alone: it puts every thread on one malloc arena");
        // One arena, so that mallinfo2() sees the runtime threads' allocations too.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
    let mut results = Results::default();
    for group in &o.groups {
        let t = Instant::now();
        match group.as_str() {
            "latency" => latency(&o, &mut results),
            "throughput" => throughput(&o, &mut results),
            "lifecycle" => lifecycle(&o, &mut results),
            "memory" => memory(&o, &mut results),
            "pool" => pool(&o, &mut results),
            other => panic!("unknown group {}", other),
        }
        eprintln!("tokio_bench: {} done in {:.1} s", group, t.elapsed().as_secs_f64());
    }
    let json = results.to_json(&o);
    match &o.json {
        Some(path) => std::fs::File::create(path).and_then(|mut f| f.write_all(json.as_bytes())).expect("write JSON"),
        None => print!("{}", json),
    }
}
