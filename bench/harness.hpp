// What every measurement in loopbridge_bench shares: options, CPU placement, statistics,
// the JSON results, alternating blocks, host threads released together, and the raw Asio
// loop that is the baseline. bench/tokio and bench/python follow the same rules (the same
// placement, percentile rank and JSON records), so bench/run.py can put them side by side.

#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace loopbridge::bench {

using Clock = std::chrono::steady_clock;

struct Options {
  int blocks = 5;              ///< blocks per variant (alternating)
  std::vector<std::string> groups{"latency", "throughput", "lifecycle", "pool"};
  std::vector<int> threads{1, 2, 4};     ///< host-thread counts for throughput and pools
  std::vector<int> pool_loops{1, 2, 4};  ///< pool sizes
  int batch = 1000;     ///< tasks in flight per host thread
  int ops = 20000;      ///< tasks per host thread per block (a multiple of batch)
  int samples = 2000;   ///< round trips per block
  int pending = 10000;  ///< tasks parked on timers for the stop and memory measures
  std::string json;     ///< output file; empty: stdout
};

/// Parses the command line (see --help); exits with a message on a bad one.
Options parse_options(int argc, char** argv);

/// Records the CPUs this process may run on; call first in main.
void init_cpus();
/// CPU k of the placement rules: the k-th CPU the process could use at start, modulo their
/// count.
int cpu(int k);
int cpu_count();
/// Pins this thread to cpu_id; a negative id leaves it where it is.
void pin_this_thread(int cpu_id);

/// A CPU id that lets the OS place the thread on any CPU the process may use.
inline constexpr int kAnyCpu = -1;
/// Pins this thread to cpu_id, or lets the OS move it over every CPU the process may use
/// (kAnyCpu), as a user's threads are.
void place_this_thread(int cpu_id);

/// Where the threads of a throughput or round-trip measurement run.
/// - pinned: the loop on the last CPU, every host thread on the first (on 2 vCPUs the only
///   way to keep hosts off the loop's CPU);
/// - spread: the loop on the last CPU, host threads round robin over the other CPUs (only
///   with several hosts and at least two other CPUs; otherwise it is the pinned placement);
/// - os: nothing pinned: the OS places every thread, as it does a user's.
enum class Placement { pinned, spread, os };
const char* placement_name(Placement p);
/// The placements a measurement with `hosts` host threads runs in.
std::vector<Placement> placements_for(int hosts);
/// The CPU of loop `i` of `loops` (the last CPUs, one each while there are enough), and of
/// host thread `h` (the CPUs the loops leave; all of them when they leave none).
int loop_cpu(Placement p, int i = 0, int loops = 1);
int host_cpu(Placement p, int h, int loops = 1);

double seconds_since(Clock::time_point t);
double micros(Clock::duration d);

/// The element at rank floor(p * n) of sorted samples.
double percentile(const std::vector<double>& sorted, double p);

/// Block values keyed by metric, variant, placement, host threads and pool loops (0: none).
class Results {
public:
  void add(const std::string& metric, const std::string& variant, const std::string& placement, int threads,
           int loops, const char* unit, const char* better, const std::string& stat, double value);
  /// p50 and p99 (and p999) of one block's samples, in microseconds.
  void add_latency(const std::string& metric, const std::string& variant, const std::string& placement,
                   std::vector<double> samples_us, bool with_p999);
  void write_json(const Options& options) const;

private:
  struct Record {
    const char* unit;
    const char* better;
    std::map<std::string, std::vector<double>> stats;
  };
  std::map<std::tuple<std::string, std::string, std::string, int, int>, Record> records_;
};

/// Runs one warm-up block whose results are dropped (the first variant in a process would
/// pay for its cold heap and caches), then `blocks` blocks of each variant once. Each block
/// starts one variant further along and every other block runs backwards, so that every
/// variant sees every position in the order and follows two different variants.
void alternate(int blocks, const std::vector<std::function<void()>>& variants);

/// Runs body(host) on `hosts` threads placed by place_this_thread(host_cpu(host)), released
/// together.
/// Returns the release time and the time the last host finished.
std::pair<Clock::time_point, Clock::time_point> run_hosts(int hosts, const std::function<int(int)>& host_cpu,
                                                          const std::function<void(int)>& body);

/// Counts fire-and-forget tasks; the one that completes the count records the time and
/// wakes the waiter, so the measure ends when the last task ran, not when a waiter woke.
struct Completion {
  explicit Completion(long expected_count) : expected(expected_count) {}
  void count() noexcept {
    if (done.fetch_add(1, std::memory_order_relaxed) + 1 == expected) {
      finished_at = Clock::now();
      finished.store(true, std::memory_order_release);
      finished.notify_one();
    }
  }
  Clock::time_point wait() {
    finished.wait(false, std::memory_order_acquire);
    return finished_at;
  }
  const long expected;
  std::atomic<long> done{0};
  std::atomic<bool> finished{false};
  Clock::time_point finished_at;
};

/// The raw Asio baseline: an io_context run by its own thread with a work guard.
struct RawLoop {
  explicit RawLoop(int cpu_id);
  ~RawLoop();
  RawLoop(const RawLoop&) = delete;
  RawLoop& operator=(const RawLoop&) = delete;
  /// Lets the thread finish once the queued work is done, and joins it.
  void join();
  /// Moves the loop's thread (place_this_thread on it); returns once it ran there.
  void place(int cpu_id);

  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
};

/// Heap bytes in use (glibc mallinfo2: every thread's, when there is one arena).
double heap_in_use();

// The groups of measurements; each appends its records.
void latency(const Options& o, Results& results);
void throughput(const Options& o, Results& results);
void lifecycle(const Options& o, Results& results);
void memory(const Options& o, Results& results);
void pool(const Options& o, Results& results);

}  // namespace loopbridge::bench
