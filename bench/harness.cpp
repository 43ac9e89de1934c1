#include "harness.hpp"

#include <boost/asio/post.hpp>
#include <boost/version.hpp>

#include <malloc.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <sstream>

namespace loopbridge::bench {

namespace {

bool recording = true;  // false during alternate()'s warm-up block

constexpr const char* kUsage =
    "loopbridge_bench [--blocks N] [--groups latency,throughput,lifecycle,memory,pool]\n"
    "                 [--threads 1,2,4] [--pool-loops 1,2,4] [--batch N] [--ops N]\n"
    "                 [--samples N] [--pending N] [--json FILE]\n"
    "Run the memory group alone: it puts every thread on one malloc arena.\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "loopbridge_bench: " << message << "\n" << kUsage;
  std::exit(2);
}

int to_int(const std::string& text) {
  try {
    std::size_t used = 0;
    int value = std::stoi(text, &used);
    if (used == text.size() && value > 0) return value;
  } catch (const std::exception&) {
  }
  usage_error("not a positive number: " + text);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  return parts;
}

std::vector<int> to_ints(const std::string& text) {
  std::vector<int> values;
  for (const auto& part : split(text)) values.push_back(to_int(part));
  return values;
}

std::vector<int>& allowed_cpus() {
  static std::vector<int> cpus;
  return cpus;
}

std::string json_list(const std::vector<int>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error(arg + " needs a value");
    std::string value = argv[++i];
    if (arg == "--blocks") o.blocks = to_int(value);
    else if (arg == "--groups") o.groups = split(value);
    else if (arg == "--threads") o.threads = to_ints(value);
    else if (arg == "--pool-loops") o.pool_loops = to_ints(value);
    else if (arg == "--batch") o.batch = to_int(value);
    else if (arg == "--ops") o.ops = to_int(value);
    else if (arg == "--samples") o.samples = to_int(value);
    else if (arg == "--pending") o.pending = to_int(value);
    else if (arg == "--json") o.json = value;
    else usage_error("unknown option " + arg);
  }
  if (o.ops % o.batch != 0) usage_error("--ops must be a multiple of --batch");
  bool memory = std::find(o.groups.begin(), o.groups.end(), "memory") != o.groups.end();
  if (memory && o.groups.size() > 1) usage_error("run the memory group alone");
  return o;
}

void init_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) allowed_cpus().push_back(c);
  }
}

int cpu(int k) { return allowed_cpus()[static_cast<std::size_t>(k) % allowed_cpus().size()]; }

int cpu_count() { return static_cast<int>(allowed_cpus().size()); }

void pin_this_thread(int cpu_id) {
  if (cpu_id < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu_id), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void place_this_thread(int cpu_id) {
  if (cpu_id >= 0) {
    pin_this_thread(cpu_id);
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : allowed_cpus()) CPU_SET(static_cast<unsigned>(c), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

const char* placement_name(Placement p) {
  switch (p) {
    case Placement::pinned: return "pinned";
    case Placement::spread: return "spread";
    case Placement::os: return "os";
  }
  return "?";
}

std::vector<Placement> placements_for(int hosts) {
  std::vector<Placement> placements{Placement::pinned, Placement::os};
  if (hosts > 1 && cpu_count() >= 3) placements.insert(placements.begin() + 1, Placement::spread);
  return placements;
}

int loop_cpu(Placement p, int i, int loops) {
  if (p == Placement::os) return kAnyCpu;
  const int n = cpu_count();
  return cpu((n * loops - 1 - i) % n);
}

int host_cpu(Placement p, int h, int loops) {
  const int n = cpu_count();
  const int left = n > loops ? n - loops : n;
  switch (p) {
    case Placement::pinned: return cpu(0);
    case Placement::spread: return cpu(h % left);
    case Placement::os: return kAnyCpu;
  }
  return kAnyCpu;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double percentile(const std::vector<double>& sorted, double p) {
  auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank)];
}

void Results::add(const std::string& metric, const std::string& variant, const std::string& placement, int threads,
                  int loops, const char* unit, const char* better, const std::string& stat, double value) {
  if (!recording) return;
  auto [it, inserted] = records_.try_emplace({metric, variant, placement, threads, loops}, Record{unit, better, {}});
  it->second.stats[stat].push_back(value);
}

void Results::add_latency(const std::string& metric, const std::string& variant, const std::string& placement,
                          std::vector<double> samples_us, bool with_p999) {
  std::sort(samples_us.begin(), samples_us.end());
  add(metric, variant, placement, 0, 0, "us", "lower", "p50", percentile(samples_us, 0.5));
  add(metric, variant, placement, 0, 0, "us", "lower", "p99", percentile(samples_us, 0.99));
  if (with_p999) add(metric, variant, placement, 0, 0, "us", "lower", "p999", percentile(samples_us, 0.999));
}

void Results::write_json(const Options& o) const {
  std::ostringstream out;
  auto number = [](int n) { return n == 0 ? std::string("null") : std::to_string(n); };
  out << "{\n  \"program\": \"loopbridge_bench\",\n  \"config\": {\"blocks\": " << o.blocks << ", \"batch\": " << o.batch
      << ", \"ops\": " << o.ops << ", \"samples\": " << o.samples << ", \"pending\": " << o.pending
      << ", \"threads\": " << json_list(o.threads) << ", \"pool_loops\": " << json_list(o.pool_loops)
      << ", \"cpus\": " << cpu_count() << ", \"compiler\": \"g++ " << __VERSION__ << "\", \"boost\": \""
      << BOOST_LIB_VERSION << "\"},\n  \"records\": [\n";
  bool first = true;
  char buffer[32];
  for (const auto& [key, record] : records_) {
    const auto& [metric, variant, placement, threads, loops] = key;
    out << (first ? "" : ",\n") << "    {\"metric\": \"" << metric << "\", \"variant\": \"" << variant
        << "\", \"placement\": \"" << placement << "\", \"threads\": " << number(threads)
        << ", \"loops\": " << number(loops) << ", \"unit\": \"" << record.unit << "\", \"better\": \""
        << record.better << "\", \"stats\": {";
    first = false;
    bool first_stat = true;
    for (const auto& [stat, values] : record.stats) {
      out << (first_stat ? "" : ", ") << "\"" << stat << "\": [";
      first_stat = false;
      for (std::size_t i = 0; i < values.size(); ++i) {
        std::snprintf(buffer, sizeof buffer, "%.6e", values[i]);
        out << (i ? ", " : "") << buffer;
      }
      out << "]";
    }
    out << "}}";
  }
  out << "\n  ]\n}\n";
  if (o.json.empty()) {
    std::cout << out.str();
    return;
  }
  std::ofstream file(o.json);
  file << out.str();
  if (!file) usage_error("cannot write " + o.json);
}

void alternate(int blocks, const std::vector<std::function<void()>>& variants) {
  const std::size_t n = variants.size();
  recording = false;
  for (const auto& variant : variants) variant();
  recording = true;
  for (std::size_t b = 0; b < static_cast<std::size_t>(blocks); ++b) {
    for (std::size_t i = 0; i < n; ++i) variants[b % 2 == 0 ? (b + i) % n : (b + n - 1 - i) % n]();
  }
}

std::pair<Clock::time_point, Clock::time_point> run_hosts(int hosts, const std::function<int(int)>& host_cpu,
                                                          const std::function<void(int)>& body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::mutex ends_mutex;
  Clock::time_point last_end{};
  std::vector<std::thread> threads;
  for (int h = 0; h < hosts; ++h) {
    threads.emplace_back([&, h] {
      place_this_thread(host_cpu(h));
      ready.fetch_add(1, std::memory_order_acq_rel);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(h);
      auto end = Clock::now();
      std::lock_guard lock(ends_mutex);
      last_end = std::max(last_end, end);
    });
  }
  while (ready.load(std::memory_order_acquire) < hosts) std::this_thread::yield();
  auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  return {start, last_end};
}

RawLoop::RawLoop(int cpu_id)
    : thread([this, cpu_id] {
        pin_this_thread(cpu_id);
        io.run();
      }) {}

RawLoop::~RawLoop() {
  if (thread.joinable()) {
    io.stop();
    join();
  }
}

void RawLoop::place(int cpu_id) {
  std::promise<void> placed;
  boost::asio::post(io, [&] {
    place_this_thread(cpu_id);
    placed.set_value();
  });
  placed.get_future().get();
}

void RawLoop::join() {
  work.reset();
  thread.join();
}

double heap_in_use() {
  struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

}  // namespace loopbridge::bench
