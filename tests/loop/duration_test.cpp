// Every duration and time point the public API takes, in one table: a negative value (or
// NaN) is refused with InvalidArgument, zero does what the docs say (polls, or is refused
// where they ask for a positive value), and a value too large for the clock (or infinity)
// means "no limit": it never overflows (the asan preset aborts on signed overflow) and never
// turns into a deadline already past.

#include <loopbridge/bridge/run.hpp>
#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_pool.hpp>
#include <loopbridge/testing/catch2.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ratio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace duration_table {

namespace asio = boost::asio;
namespace chrono = std::chrono;
using namespace std::chrono_literals;
using loopbridge::BackgroundLoop;
using loopbridge::InvalidArgument;
using loopbridge::LoopOptions;
using loopbridge::LoopPool;
using loopbridge::LoopState;
using loopbridge::PoolOptions;
using loopbridge::RunOptions;
using loopbridge::StopOptions;
using loopbridge::SubmitOptions;
using loopbridge::TaskHandle;
using loopbridge::test::Gate;

// ---------------------------------------------------------------- what a row expects

/// What a call gave, when it returned.
enum class Got {
  ok,         ///< returned normally: a value, future_status::ready, true, a report
  timed_out,  ///< future_status::timeout, false, or a Timeout / QueueFull exception
};

enum class Expect {
  refused,    ///< throws InvalidArgument at once
  returns,    ///< returns normally, soon
  times_out,  ///< reports a timeout, soon: the awaited event is 10 s away
  waits,      ///< no limit: returns normally once the awaited event happens, 20 ms or more later
};

const char* to_string(Expect e) {
  switch (e) {
    case Expect::refused: return "throws InvalidArgument";
    case Expect::returns: return "returns normally";
    case Expect::times_out: return "times out quickly";
    case Expect::waits: return "waits without limit (returns ok once the event comes)";
  }
  return "?";
}

struct Row {
  std::string what;
  std::function<Got()> call;
  Expect expect;
};

/// Whether the awaited event (a task settling, a loop stopping, room in a queue) comes
/// during the call: `later` 20 ms or more after it began, `never` not before the row ends.
enum class Event { later, never };

constexpr auto kLater = 20ms;      // when a `later` event comes
constexpr auto kMinWait = 15ms;    // a `waits` row returns no sooner than this
constexpr auto kQuick = 3s;        // a `refused` / `times_out` row returns sooner than this
constexpr auto kSlow = 8s;         // any row returns sooner than this
constexpr auto kRowWatchdog = 12s;  // past this, the row's loops are stopped so that it ends

// ---------------------------------------------------------------- timing the call itself

/// The time the row's own call took (not its setup): set by timed().
std::optional<chrono::steady_clock::duration> g_call_time;

template <class F>
decltype(auto) timed(F&& f) {
  struct Clock {
    chrono::steady_clock::time_point start = chrono::steady_clock::now();
    ~Clock() { g_call_time = chrono::steady_clock::now() - start; }
  } clock;
  return std::forward<F>(f)();
}

Got status(std::future_status s) { return s == std::future_status::ready ? Got::ok : Got::timed_out; }
Got flag(bool b) { return b ? Got::ok : Got::timed_out; }

/// Reports a broken side condition of a row (the runner shows it as an unexpected error).
void require(bool condition, const std::string& what) {
  if (!condition) throw std::logic_error(what);
}

// ---------------------------------------------------------------- helpers

LoopOptions quiet(const char* name) {
  LoopOptions o;
  o.name = name;
  o.error_handler = [](std::exception_ptr, std::string_view) {};
  o.stall_handler = [](const loopbridge::StallReport&) {};
  return o;
}

/// Opens a gate `after` from now, from a thread of its own; joins it at destruction.
class OpenLater {
public:
  explicit OpenLater(Gate& gate, chrono::milliseconds after = kLater)
      : thread_([&gate, after] {
          std::this_thread::sleep_for(after);
          gate.open();
        }) {}
  ~OpenLater() { thread_.join(); }
  OpenLater(const OpenLater&) = delete;
  OpenLater& operator=(const OpenLater&) = delete;

private:
  std::thread thread_;
};

/// Opens a gate when the row ends, whatever happened.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.open(); }
};

/// Runs `fn` `after` from now, on a thread of its own; joins it at destruction.
class Later {
public:
  Later(std::function<void()> fn, chrono::milliseconds after = kLater)
      : thread_([fn = std::move(fn), after] {
          std::this_thread::sleep_for(after);
          fn();
        }) {}
  ~Later() { thread_.join(); }
  Later(const Later&) = delete;
  Later& operator=(const Later&) = delete;

private:
  std::thread thread_;
};

/// A plain callable that occupies the loop thread until `gate` opens (10 s at most);
/// returns once it has started.
TaskHandle<int> blocker(const loopbridge::LoopHandle& loop, std::shared_ptr<Gate> gate) {
  auto started = std::make_shared<Gate>();
  auto task = loop.submit([gate, started] {
    started->open();
    gate->wait();
    return 7;
  });
  require(started->wait(), "the blocking callable did not start within 10 s");
  return task;
}

/// A coroutine that sleeps `d`, opening `started` first.
asio::awaitable<void> sleeper(chrono::milliseconds d, std::shared_ptr<Gate> started) {
  started->open();
  co_await loopbridge::test::sleep_for(d);
}

/// A coroutine that, once cancelled, takes `unwind` to end.
asio::awaitable<void> slow_unwinder(chrono::milliseconds unwind, std::shared_ptr<Gate> started) {
  bool cancelled = false;
  try {
    started->open();
    co_await loopbridge::test::sleep_for(10s);
  } catch (const boost::system::system_error&) {
    cancelled = true;
  }
  if (cancelled) {
    co_await asio::this_coro::reset_cancellation_state();
    co_await loopbridge::test::sleep_for(unwind);
  }
}

/// An on_stop / on_start hook that takes `d`.
loopbridge::Hook hook_taking(chrono::milliseconds d) {
  return [d]() -> asio::awaitable<void> { return loopbridge::test::sleep_for(d); };
}

/// Reaches LoopHygiene's protected set_deadline.
class DeadlineProbe : public loopbridge::testing::LoopHygiene {
public:
  using LoopHygiene::set_deadline;
};

/// Sets an environment variable for the row, restores it at the end.
class EnvVar {
public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

private:
  const char* name_;
  std::optional<std::string> old_;
};

// ---------------------------------------------------------------- the values

// Periods no clock uses: a tick of 2/3 ns (its max() is about 195 years, short of the clock's
// range) and of 3/2 ns (its max() is past the clock's range).
using TwoThirdsNs = chrono::duration<long long, std::ratio<2, 3'000'000'000>>;
using ThreeHalvesNs = chrono::duration<long long, std::ratio<3, 2'000'000'000>>;
using NarrowHours = chrono::duration<int, std::ratio<3600>>;
using UnsignedNs = chrono::duration<unsigned long long, std::nano>;
using FloatSeconds = chrono::duration<double>;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

/// Rows for a parameter that is a template on the duration type. `probe(d, event)` makes the
/// call with `d`, the awaited event coming `later` or `never`; `zero` is what the docs say a
/// zero timeout does.
template <class Probe>
void template_rows(std::vector<Row>& rows, const std::string& api, Probe probe, Expect zero) {
  auto add = [&](std::string value, auto d, Event event, Expect expect) {
    rows.push_back({api + "(" + value + ")", [probe, d, event] { return probe(d, event); }, expect});
  };
  add("-1ns", -1ns, Event::never, Expect::refused);
  add("minutes::min()", chrono::minutes::min(), Event::never, Expect::refused);
  add("TwoThirdsNs::min()", TwoThirdsNs::min(), Event::never, Expect::refused);
  add("duration<double>(-inf)", FloatSeconds(-kInf), Event::never, Expect::refused);
  add("duration<double>(NaN)", FloatSeconds(kNaN), Event::never, Expect::refused);
  add("0ns", 0ns, Event::never, zero);
  add("hours(0)", chrono::hours(0), Event::never, zero);
  add("1ms", 1ms, Event::never, Expect::times_out);
  add("duration<double, milli>(1.5)", chrono::duration<double, std::milli>(1.5), Event::never, Expect::times_out);
  add("TwoThirdsNs(3'000'000) = 2 ms", TwoThirdsNs(3'000'000), Event::never, Expect::times_out);
  add("nanoseconds::max()", chrono::nanoseconds::max(), Event::later, Expect::waits);
  add("seconds::max()", chrono::seconds::max(), Event::later, Expect::waits);
  add("hours::max()", chrono::hours::max(), Event::later, Expect::waits);
  add("duration<int, ratio<3600>>::max()", NarrowHours::max(), Event::later, Expect::waits);
  add("duration<unsigned long long, nano>::max()", UnsignedNs::max(), Event::later, Expect::waits);
  add("duration<double>(+inf)", FloatSeconds(kInf), Event::later, Expect::waits);
  add("duration<double>::max()", FloatSeconds::max(), Event::later, Expect::waits);
  add("TwoThirdsNs::max()", TwoThirdsNs::max(), Event::later, Expect::waits);
  add("ThreeHalvesNs::max()", ThreeHalvesNs::max(), Event::later, Expect::waits);
}

using PicoPoint = chrono::time_point<chrono::steady_clock, chrono::duration<long long, std::pico>>;
using FloatPoint = chrono::time_point<chrono::steady_clock, FloatSeconds>;
using HourSystemPoint = chrono::time_point<chrono::system_clock, chrono::hours>;
using MinuteSystemPoint = chrono::time_point<chrono::system_clock, chrono::minutes>;
using TwoThirdsPoint = chrono::time_point<chrono::steady_clock, TwoThirdsNs>;

/// steady_clock::now() + `ahead` as a picosecond time point (one holds about 106 days from
/// the clock's epoch: the test gives up these rows on a machine up longer than 50 days).
std::optional<PicoPoint> pico_from_now(chrono::nanoseconds ahead) {
  const auto since = chrono::steady_clock::now().time_since_epoch();
  if (since > chrono::hours(24 * 50)) return std::nullopt;
  return PicoPoint(chrono::duration_cast<PicoPoint::duration>(since + ahead));
}

/// Rows for a parameter that is a time point of any clock and duration. A deadline already
/// past polls; one the clock cannot reach is no limit; NaN is refused.
template <class Probe>
void time_point_rows(std::vector<Row>& rows, const std::string& api, Probe probe) {
  auto add = [&](std::string value, auto make, Event event, Expect expect) {
    rows.push_back({api + "(" + value + ")",
                    [probe, make, event] {
                      const auto deadline = make();  // made at the call, not when the table is
                      return probe(deadline, event);
                    },
                    expect});
  };
  using Steady = chrono::steady_clock;
  using System = chrono::system_clock;
  add("steady_clock::time_point::min()", [] { return Steady::time_point::min(); }, Event::never, Expect::times_out);
  add("steady now - 1ns", [] { return Steady::now() - 1ns; }, Event::never, Expect::times_out);
  add("steady now", [] { return Steady::now(); }, Event::never, Expect::times_out);
  add("steady now + 2ms", [] { return Steady::now() + 2ms; }, Event::never, Expect::times_out);
  add("steady_clock::time_point::max()", [] { return Steady::time_point::max(); }, Event::later, Expect::waits);
  add("system_clock::time_point::min()", [] { return System::time_point::min(); }, Event::never, Expect::times_out);
  add("system now + 2ms", [] { return System::now() + 2ms; }, Event::never, Expect::times_out);
  add("system_clock::time_point::max()", [] { return System::time_point::max(); }, Event::later, Expect::waits);
  add("time_point<system_clock, minutes>::min()", [] { return MinuteSystemPoint::min(); }, Event::never,
      Expect::times_out);
  add("time_point<system_clock, hours>::max()", [] { return HourSystemPoint::max(); }, Event::later, Expect::waits);
  add("time_point<steady_clock, duration<double>>(NaN)", [] { return FloatPoint(FloatSeconds(kNaN)); }, Event::never,
      Expect::refused);
  add("time_point<steady_clock, duration<double>>(-inf)", [] { return FloatPoint(FloatSeconds(-kInf)); }, Event::never,
      Expect::times_out);
  add("time_point<steady_clock, duration<double>>(+inf)", [] { return FloatPoint(FloatSeconds(kInf)); }, Event::later,
      Expect::waits);
  add("time_point<steady_clock, duration<double>>::max()", [] { return FloatPoint::max(); }, Event::later,
      Expect::waits);
  add("time_point<steady_clock, TwoThirdsNs>::max()", [] { return TwoThirdsPoint::max(); }, Event::later,
      Expect::waits);
  if (pico_from_now(0ns)) {
    add("picosecond time_point::min()", [] { return PicoPoint::min(); }, Event::never, Expect::times_out);
    add("picosecond steady now + 2ms", [] { return *pico_from_now(2ms); }, Event::never, Expect::times_out);
    // About 106 days from the clock's epoch: in the future on this machine (checked above).
    add("picosecond time_point::max()", [] { return PicoPoint::max(); }, Event::later, Expect::waits);
  }
}

/// Rows for a std::chrono::nanoseconds field or argument. `probe(v, event)`; `zero` and
/// `small` (1 ms) are what the docs say; `max` is "no limit".
template <class Probe>
void field_rows(std::vector<Row>& rows, const std::string& api, Probe probe, Expect zero, Expect small,
                Event small_event, Expect max) {
  auto add = [&](std::string value, chrono::nanoseconds v, Event event, Expect expect) {
    rows.push_back({api + " = " + value, [probe, v, event] { return probe(v, event); }, expect});
  };
  add("-1ns", -1ns, Event::never, Expect::refused);
  add("nanoseconds::min()", chrono::nanoseconds::min(), Event::never, Expect::refused);
  add("0", 0ns, Event::never, zero);
  add("1ms", 1ms, small_event, small);
  add("nanoseconds::max()", chrono::nanoseconds::max(), Event::later, max);
}

// ---------------------------------------------------------------- the probes

/// A running loop with a task that settles `later` (20 ms into the call) or `never` (not
/// before the row ends); calls `call(task)`.
template <class Call>
Got with_task(Event event, Call call, LoopOptions options = quiet("lb-dur-task")) {
  auto gate = std::make_shared<Gate>();  // the blocker's own copy outlives the loop's stop
  BackgroundLoop loop(std::move(options));
  loop.start();
  OpenOnExit release{*gate};  // before the loop's stop
  auto task = blocker(loop, gate);
  std::optional<OpenLater> open;
  if (event == Event::later) open.emplace(*gate);
  return call(task);
}

/// A pool of two running loops, loop 0 busy until the event.
template <class Call>
Got with_busy_pool(Event event, Call call) {
  auto gate = std::make_shared<Gate>();
  LoopPool pool({.loops = 2, .loop = quiet("lb-dur-pool")});
  pool.start();
  OpenOnExit release{*gate};
  auto task = blocker(pool.loop(0), gate);
  std::optional<OpenLater> open;
  if (event == Event::later) open.emplace(*gate);
  return call(pool);
}

/// A running loop whose queue (capacity 1) is full: its thread is busy until the event and
/// one submission waits.
template <class Call>
Got with_full_queue(Event event, LoopOptions options, Call call) {
  auto gate = std::make_shared<Gate>();
  options.queue_capacity = 1;
  options.when_full = loopbridge::QueueFullPolicy::wait;
  BackgroundLoop loop(std::move(options));
  loop.start();
  OpenOnExit release{*gate};
  auto busy = blocker(loop, gate);
  auto queued = loop.submit([] { return 1; });
  std::optional<OpenLater> open;
  if (event == Event::later) open.emplace(*gate);
  return call(loop);
}

/// The stop phase a StopOptions field bounds.
enum class Phase { drain, cancel, hook };

/// Work for one stop phase, its end the event: `later`, a task that ends 40 ms after it
/// started (drain), a task that takes 40 ms to unwind once cancelled (cancel), an on_stop
/// hook that takes 40 ms (hook); `never`, the same taking 10 s, so that the phase's deadline
/// ends it. Each phase's work is bounded only by its own deadline: the other fields keep
/// their defaults (drain 0, cancel 5 s, hook 5 s).
class StopWork {
public:
  StopWork(Phase phase, Event event) : phase_(phase), length_(event == Event::later ? 40ms : 10s) {}

  /// Before start(): the hooks.
  template <class Loop>
  void hooks(Loop& loop) const {
    if (phase_ == Phase::hook) loop.on_start_stop(hook_taking(0ms), hook_taking(length_));
  }
  /// After start(): the tasks, on `loop`; returns once they run.
  void tasks(const loopbridge::LoopHandle& loop) {
    auto started = std::make_shared<Gate>();
    if (phase_ == Phase::drain) {
      tasks_.push_back(loop.submit([started, d = length_] { return sleeper(d, started); }));
    } else if (phase_ == Phase::cancel) {
      tasks_.push_back(loop.submit([started, d = length_] { return slow_unwinder(d, started); }));
    } else {
      return;
    }
    require(started->wait(), "the task did not start within 10 s");
  }
  /// Once the stop returned: every task has settled.
  void check_settled() const {
    for (const auto& task : tasks_) require(task.ready(), "a task had not settled when the stop returned");
  }

private:
  Phase phase_;
  chrono::milliseconds length_;
  std::vector<TaskHandle<void>> tasks_;
};

/// Stops that end the work at once, after a refused call.
StopOptions quick_stop() { return {.drain_timeout = 0ns, .cancel_timeout = 1ms, .hook_timeout = 1ms}; }

/// A stop of one loop (by `stop(loop)`) with the work of `phase`.
template <class Stop>
Got stop_with_work(Phase phase, Event event, Stop stop) {
  BackgroundLoop loop(quiet("lb-dur-stop"));
  StopWork work(phase, event);
  work.hooks(loop);
  loop.start();
  work.tasks(loop);
  Got got = Got::ok;
  try {
    got = stop(loop);
  } catch (...) {
    loop.stop(quick_stop());
    throw;
  }
  require(loop.wait_stopped(10s), "the loop did not stop within 10 s");
  work.check_settled();
  return got;
}

/// The same with the BackgroundLoop's destructor, for LoopOptions::destructor_stop.
Got destroy_with_work(Phase phase, Event event, LoopOptions options) {
  StopWork work(phase, event);
  {
    std::optional<BackgroundLoop> loop(std::in_place, std::move(options));
    work.hooks(*loop);
    loop->start();
    work.tasks(*loop);
    timed([&] { loop.reset(); });
  }
  work.check_settled();
  return Got::ok;
}

/// A loop built with `options`, started, given one call, stopped.
Got loop_with(LoopOptions options) {
  BackgroundLoop loop(std::move(options));
  loop.start();
  auto task = loop.submit([] { return 1; });
  require(task.wait_for(10s) == std::future_status::ready, "a call did not finish within 10 s");
  loop.stop();
  return Got::ok;
}

// ---------------------------------------------------------------- the table

std::vector<Row> table() {
  std::vector<Row> rows;

  // ---- LoopOptions (the BackgroundLoop constructor validates) ----
  field_rows(
      rows, "LoopOptions::start_timeout",
      [](chrono::nanoseconds v, Event event) {
        LoopOptions o = quiet("lb-dur-start");
        o.start_timeout = v;
        BackgroundLoop loop(std::move(o));
        loop.on_start(hook_taking(event == Event::later ? 40ms : 10s));
        try {
          timed([&] { loop.start(); });
        } catch (const loopbridge::Timeout&) {
          return Got::timed_out;
        }
        loop.stop();
        return Got::ok;
      },
      // Zero: "How long the on_start hooks may take": the constructor requires a positive one.
      Expect::refused, Expect::times_out, Event::never, Expect::waits);
  for (const auto& [field, member, phase] : {std::tuple{"drain_timeout", &StopOptions::drain_timeout, Phase::drain},
                                             std::tuple{"cancel_timeout", &StopOptions::cancel_timeout, Phase::cancel},
                                             std::tuple{"hook_timeout", &StopOptions::hook_timeout, Phase::hook}}) {
    field_rows(
        rows, std::string("LoopOptions::destructor_stop.") + field + " (the destructor)",
        [member = member, phase = phase](chrono::nanoseconds v, Event event) {
          LoopOptions o = quiet("lb-dur-dtor");
          o.destructor_stop.*member = v;
          return destroy_with_work(phase, event, std::move(o));
        },
        Expect::returns, Expect::returns, Event::never, Expect::waits);
  }
  field_rows(
      rows, "LoopOptions::spin_before_sleep",
      [](chrono::nanoseconds v, Event) {
        LoopOptions o = quiet("lb-dur-spin");
        o.spin_before_sleep = v;
        return loop_with(std::move(o));
      },
      // Documented: at most 10 ms, "the constructor throws InvalidArgument for a negative
      // value or a larger one".
      Expect::returns, Expect::returns, Event::never, Expect::refused);
  for (auto [value, v, expect] : {std::tuple{"10ms", chrono::nanoseconds(10ms), Expect::returns},
                                  std::tuple{"10ms + 1ns", chrono::nanoseconds(10ms) + 1ns, Expect::refused},
                                  std::tuple{"hours(1)", chrono::nanoseconds(1h), Expect::refused}}) {
    rows.push_back({std::string("LoopOptions::spin_before_sleep = ") + value,
                    [v = v] {
                      LoopOptions o = quiet("lb-dur-spin");
                      o.spin_before_sleep = v;
                      return loop_with(std::move(o));
                    },
                    expect});
  }
  // The spin is bounded by the wait's deadline: a deadline at the clock's end, and one now.
  rows.push_back({"spin_before_sleep 10 ms, then wait_for(nanoseconds::max())",
                  [] {
                    LoopOptions o = quiet("lb-dur-spin");
                    o.spin_before_sleep = 10ms;
                    return with_task(
                        Event::later,
                        [](auto& task) { return timed([&] { return status(task.wait_for(chrono::nanoseconds::max())); }); },
                        std::move(o));
                  },
                  Expect::waits});
  rows.push_back({"spin_before_sleep 10 ms, then wait_for(0ns)",
                  [] {
                    LoopOptions o = quiet("lb-dur-spin");
                    o.spin_before_sleep = 10ms;
                    return with_task(
                        Event::never, [](auto& task) { return timed([&] { return status(task.wait_for(0ns)); }); },
                        std::move(o));
                  },
                  Expect::times_out});
  field_rows(
      rows, "LoopOptions::full_wait (a submit to a full queue)",
      [](chrono::nanoseconds v, Event event) {
        LoopOptions o = quiet("lb-dur-full");
        o.full_wait = v;
        return with_full_queue(event, std::move(o), [](BackgroundLoop& loop) {
          try {
            auto task = timed([&] { return loop.submit([] { return 2; }); });
            require(task.wait_for(10s) == std::future_status::ready, "the admitted call did not run");
            return Got::ok;
          } catch (const loopbridge::QueueFull&) {
            return Got::timed_out;
          }
        });
      },
      Expect::times_out, Expect::times_out, Event::never, Expect::waits);
  field_rows(
      rows, "LoopOptions::stall_threshold",
      [](chrono::nanoseconds v, Event) {
        auto stalls = std::make_shared<std::atomic<int>>(0);
        LoopOptions o = quiet("lb-dur-stall");
        o.stall_threshold = v;
        o.stall_handler = [stalls](const loopbridge::StallReport&) { stalls->fetch_add(1); };
        BackgroundLoop loop(std::move(o));
        loop.start();
        auto task = loop.submit([] { std::this_thread::sleep_for(2ms); });
        require(task.wait_for(10s) == std::future_status::ready, "a call did not finish within 10 s");
        loop.stop();
        // Zero turns detection off; 1 ms catches a 2 ms call; max never fires.
        if (v == 0ns || v == chrono::nanoseconds::max()) require(stalls->load() == 0, "a stall was reported");
        if (v == 1ms) require(stalls->load() >= 1, "no stall reported for a 2 ms call over a 1 ms threshold");
        return Got::ok;
      },
      Expect::returns, Expect::returns, Event::never, Expect::returns);
  rows.push_back({"PoolOptions::loop.spin_before_sleep = nanoseconds::max() (LoopPool constructor)",
                  [] {
                    PoolOptions o{.loops = 2, .loop = quiet("lb-dur-pool")};
                    o.loop.spin_before_sleep = chrono::nanoseconds::max();
                    LoopPool pool(std::move(o));
                    return Got::ok;
                  },
                  Expect::refused});
  rows.push_back({"PoolOptions::loop.destructor_stop.cancel_timeout = -1ns (LoopPool constructor)",
                  [] {
                    PoolOptions o{.loops = 2, .loop = quiet("lb-dur-pool")};
                    o.loop.destructor_stop.cancel_timeout = -1ns;
                    LoopPool pool(std::move(o));
                    return Got::ok;
                  },
                  Expect::refused});
  rows.push_back({"LoopOptions::stall_threshold = nanoseconds::min() (borrowed io_context constructor)",
                  [] {
                    asio::io_context io;
                    LoopOptions o = quiet("lb-dur-io");
                    o.stall_threshold = chrono::nanoseconds::min();
                    BackgroundLoop loop(io, std::move(o));
                    return Got::ok;
                  },
                  Expect::refused});
  rows.push_back({"LoopOptions::spin_before_sleep = nanoseconds::max() (borrowed io_context constructor)",
                  [] {
                    asio::io_context io;
                    LoopOptions o = quiet("lb-dur-io");
                    o.spin_before_sleep = chrono::nanoseconds::max();
                    BackgroundLoop loop(io, std::move(o));
                    return Got::ok;
                  },
                  Expect::refused});

  // ---- SubmitOptions::full_wait (submit and post validate) ----
  field_rows(
      rows, "SubmitOptions::full_wait (submit)",
      [](chrono::nanoseconds v, Event event) {
        LoopOptions o = quiet("lb-dur-full");
        o.full_wait = 10s;  // the per-call value must win
        return with_full_queue(event, std::move(o), [v](BackgroundLoop& loop) {
          SubmitOptions s;
          s.full_wait = v;
          try {
            auto task = timed([&] { return loop.submit([] { return 2; }, s); });
            require(task.wait_for(10s) == std::future_status::ready, "the admitted call did not run");
            return Got::ok;
          } catch (const loopbridge::QueueFull&) {
            return Got::timed_out;
          }
        });
      },
      Expect::times_out, Expect::times_out, Event::never, Expect::waits);
  field_rows(
      rows, "SubmitOptions::full_wait (post)",
      [](chrono::nanoseconds v, Event event) {
        LoopOptions o = quiet("lb-dur-full");
        o.full_wait = 10s;
        return with_full_queue(event, std::move(o), [v](BackgroundLoop& loop) {
          SubmitOptions s;
          s.full_wait = v;
          try {
            timed([&] { loop.post([] {}, s); });
            return Got::ok;
          } catch (const loopbridge::QueueFull&) {
            return Got::timed_out;
          }
        });
      },
      Expect::times_out, Expect::times_out, Event::never, Expect::waits);

  // ---- StopOptions: BackgroundLoop::stop(), LoopHandle::request_stop(), LoopPool::stop() ----
  for (const auto& [field, member, phase] : {std::tuple{"drain_timeout", &StopOptions::drain_timeout, Phase::drain},
                                             std::tuple{"cancel_timeout", &StopOptions::cancel_timeout, Phase::cancel},
                                             std::tuple{"hook_timeout", &StopOptions::hook_timeout, Phase::hook}}) {
    field_rows(
        rows, std::string("BackgroundLoop::stop(StopOptions::") + field + ")",
        [member = member, phase = phase](chrono::nanoseconds v, Event event) {
          return stop_with_work(phase, event, [&](BackgroundLoop& loop) {
            StopOptions s;
            s.*member = v;
            try {
              const auto report = timed([&] { return loop.stop(s); });
              require(report.joined, "the stop did not join the loop thread");
            } catch (const InvalidArgument&) {
              require(loop.state() == LoopState::running, "a refused stop() stopped the loop");
              throw;
            }
            return Got::ok;
          });
        },
        Expect::returns, Expect::returns, Event::never, Expect::waits);
    field_rows(
        rows, std::string("LoopHandle::request_stop(StopOptions::") + field + ")",
        [member = member, phase = phase](chrono::nanoseconds v, Event event) {
          return stop_with_work(phase, event, [&](BackgroundLoop& loop) {
            StopOptions s;
            s.*member = v;
            const loopbridge::LoopHandle handle = loop.handle();
            try {
              timed([&] { handle.request_stop(s); });
            } catch (const InvalidArgument&) {
              require(loop.state() == LoopState::running, "a refused request_stop() stopped the loop");
              throw;
            }
            // It does not wait; the loop then stops by itself.
            require(handle.wait_stopped(10s), "the loop did not stop within 10 s of request_stop()");
            return Got::ok;
          });
        },
        Expect::returns, Expect::returns, Event::never, Expect::returns);
    field_rows(
        rows, std::string("LoopPool::stop(StopOptions::") + field + ")",
        [member = member, phase = phase](chrono::nanoseconds v, Event event) {
          LoopPool pool({.loops = 2, .loop = quiet("lb-dur-pool")});
          StopWork work(phase, event);
          work.hooks(pool);
          pool.start();
          for (std::size_t i = 0; i < pool.size(); ++i) work.tasks(pool.loop(i));
          StopOptions s;
          s.*member = v;
          try {
            const auto report = timed([&] { return pool.stop(s); });
            require(report.joined, "the pool's stop did not join every loop thread");
          } catch (const InvalidArgument&) {
            require(pool.loop(0).state() == LoopState::running, "a refused LoopPool::stop() stopped a loop");
            pool.stop(quick_stop());
            throw;
          }
          work.check_settled();
          return Got::ok;
        },
        Expect::returns, Expect::returns, Event::never, Expect::waits);
  }

  // ---- TaskHandle ----
  template_rows(
      rows, "TaskHandle::wait_for",
      [](auto d, Event event) {
        return with_task(event, [d](auto& task) { return timed([&] { return status(task.wait_for(d)); }); });
      },
      Expect::times_out);  // "wait_for(0) polls"
  time_point_rows(rows, "TaskHandle::wait_until", [](auto deadline, Event event) {
    return with_task(event, [deadline](auto& task) { return timed([&] { return status(task.wait_until(deadline)); }); });
  });
  // cancel_and_wait on a plain callable that is running: the cancel cannot stop it, so the
  // wait lasts until it returns (the event) or the deadline. A refused call cancels nothing
  // (checked on a coroutine, which a cancel would end).
  auto cancel_and_wait_probe = [](auto limit, Event event) {
    {
      BackgroundLoop loop(quiet("lb-dur-cw"));
      loop.start();
      auto started = std::make_shared<Gate>();
      auto parked = loop.submit([started] { return sleeper(10s, started); });
      require(started->wait(), "the task did not start within 10 s");
      try {
        (void)parked.cancel_and_wait(limit);
      } catch (const InvalidArgument&) {
        require(parked.wait_for(50ms) == std::future_status::timeout, "a refused cancel_and_wait cancelled the task");
      }
      parked.cancel();
      require(parked.wait_for(10s) == std::future_status::ready, "the parked task did not settle");
    }
    return with_task(event, [limit](auto& task) { return timed([&] { return status(task.cancel_and_wait(limit)); }); });
  };
  template_rows(rows, "TaskHandle::cancel_and_wait", cancel_and_wait_probe, Expect::times_out);
  time_point_rows(rows, "TaskHandle::cancel_and_wait", cancel_and_wait_probe);

  // ---- LoopHandle::wait_stopped: the event is a stop requested from another thread ----
  template_rows(
      rows, "LoopHandle::wait_stopped",
      [](auto d, Event event) {
        BackgroundLoop loop(quiet("lb-dur-ws"));
        loop.start();
        const loopbridge::LoopHandle handle = loop.handle();
        std::optional<Later> stop;
        if (event == Event::later) stop.emplace([handle] { handle.request_stop(); });
        return timed([&] { return flag(handle.wait_stopped(d)); });
      },
      Expect::times_out);  // zero: polls (returns false for a running loop)

  // ---- LoopPool::cancel_all_and_wait: the event is loop 0's thread coming free ----
  template_rows(
      rows, "LoopPool::cancel_all_and_wait",
      [](auto d, Event event) {
        return with_busy_pool(event, [d](LoopPool& pool) {
          try {
            timed([&] { return pool.cancel_all_and_wait(d); });
            return Got::ok;
          } catch (const loopbridge::Timeout&) {
            return Got::timed_out;
          }
        });
      },
      Expect::times_out);  // zero: "Throws Timeout past the deadline"

  // ---- run(loop, fn, timeout) and run(loop, fn, deadline) ----
  // `later`: fn is a plain callable that returns 20 ms into the call; `never`: a coroutine
  // that parks for 10 s (the deadline cancels it, and it unwinds at once).
  auto run_probe = [](auto limit, Event event) {
    BackgroundLoop loop(quiet("lb-dur-run"));
    loop.start();
    try {
      if (event == Event::later) {
        Gate gate;
        OpenLater open(gate);
        const int value = timed([&] {
          return loopbridge::run(loop, [&gate] {
            gate.wait();
            return 7;
          }, limit);
        });
        require(value == 7, "run() returned a wrong value");
      } else {
        auto started = std::make_shared<Gate>();
        timed([&] { loopbridge::run(loop, [started] { return sleeper(10s, started); }, limit); });
      }
      return Got::ok;
    } catch (const loopbridge::Timeout&) {
      return Got::timed_out;
    }
  };
  template_rows(rows, "run(loop, fn, timeout)", run_probe, Expect::refused);  // "a timeout that is not positive"
  for (auto& [value, make, event, expect] :
       {std::tuple{"steady_clock::time_point::min()",
                   std::function<chrono::steady_clock::time_point()>([] { return chrono::steady_clock::time_point::min(); }),
                   Event::never, Expect::times_out},
        std::tuple{"steady now - 1ns",
                   std::function<chrono::steady_clock::time_point()>([] { return chrono::steady_clock::now() - 1ns; }),
                   Event::never, Expect::times_out},
        std::tuple{"steady now + 2ms",
                   std::function<chrono::steady_clock::time_point()>([] { return chrono::steady_clock::now() + 2ms; }),
                   Event::never, Expect::times_out},
        std::tuple{"steady_clock::time_point::max()",
                   std::function<chrono::steady_clock::time_point()>([] { return chrono::steady_clock::time_point::max(); }),
                   Event::later, Expect::waits}}) {
    rows.push_back({std::string("run(loop, fn, deadline = ") + value + ")",
                    [run_probe, make = make, event = event] { return run_probe(make(), event); }, expect});
  }
  // RunOptions: run() with a 100 ms timeout, fn a plain callable that ignores its
  // cancellation and returns 150 ms into the call (or, `never`, when the row ends).
  auto unwind_probe = [](RunOptions options, Event event, std::function<void(const BackgroundLoop&)> check) {
    auto gate = std::make_shared<Gate>();
    BackgroundLoop loop(quiet("lb-dur-unw"));
    loop.start();
    OpenOnExit release{*gate};
    std::optional<OpenLater> open;
    if (event == Event::later) open.emplace(*gate, 150ms);
    try {
      // Captures by value: past a bounded unwind_timeout the callable outlives the call.
      const int value = timed([&] {
        return loopbridge::run(loop, [gate] {
          gate->wait();
          return 7;
        }, 100ms, options);
      });
      require(value == 7, "run() returned a wrong value");
    } catch (const loopbridge::Timeout&) {
      return Got::timed_out;
    }
    if (check) check(loop);
    return Got::ok;
  };
  field_rows(
      rows, "RunOptions::unwind_timeout",
      [unwind_probe](chrono::nanoseconds v, Event event) {
        RunOptions o;
        o.unwind_timeout = v;
        return unwind_probe(o, event, nullptr);
      },
      Expect::times_out, Expect::times_out, Event::never, Expect::waits);
  field_rows(
      rows, "RunOptions::unwind_warning",
      [unwind_probe](chrono::nanoseconds v, Event) {
        RunOptions o;
        o.unwind_warning = v;
        return unwind_probe(o, Event::later, [v](const BackgroundLoop& loop) {
          // The warning goes to the error handler once the task outlives it (zero, 1 ms), never
          // for max.
          const auto reported = loop.unhandled_errors();
          if (v == chrono::nanoseconds::max()) require(reported == 0, "a warning was reported for an unlimited unwind_warning");
          if (v >= 0ns && v <= 1ms) require(reported == 1, "no single warning for a task that ignored its cancellation");
        });
      },
      Expect::waits, Expect::waits, Event::later, Expect::waits);

  // ---- loopbridge::testing::LoopHygiene: set_deadline and LOOPBRIDGE_TEST_DEADLINE_MS ----
  for (auto [value, v, expect] : {std::tuple{"-1ms", chrono::milliseconds(-1), Expect::refused},
                                  std::tuple{"milliseconds::min()", chrono::milliseconds::min(), Expect::refused},
                                  std::tuple{"0ms", chrono::milliseconds(0), Expect::refused},
                                  std::tuple{"1 s", chrono::milliseconds(1s), Expect::returns},
                                  std::tuple{"milliseconds::max()", chrono::milliseconds::max(), Expect::returns}}) {
    rows.push_back({std::string("LoopHygiene::set_deadline(") + value + ")",
                    [v = v] {
                      DeadlineProbe probe;
                      timed([&] { probe.set_deadline(v); });
                      return Got::ok;
                    },
                    expect});
  }
  for (auto [value, expect] : {std::pair{"-1", Expect::refused},
                               std::pair{"0", Expect::refused},
                               std::pair{"1000", Expect::returns},
                               std::pair{"9223372036854775807", Expect::returns},  // milliseconds::max()
                               std::pair{"9223372036854775808", Expect::refused},  // out of range
                               std::pair{"nan", Expect::refused},
                               std::pair{"inf", Expect::refused},
                               std::pair{"1e3", Expect::refused},
                               std::pair{"", Expect::returns}}) {  // the default
    rows.push_back({std::string("LOOPBRIDGE_TEST_DEADLINE_MS=\"") + value + "\"",
                    [value = value] {
                      EnvVar env("LOOPBRIDGE_TEST_DEADLINE_MS", value);
                      timed([] { DeadlineProbe probe; });
                      return Got::ok;
                    },
                    expect});
  }
  return rows;
}

// ---------------------------------------------------------------- running a row

/// Past kRowWatchdog, stops every loop made since the row began (as LoopHygiene does at a
/// test's deadline), so that whatever the row waits on settles and it ends.
class RowWatchdog {
public:
  RowWatchdog() {
    for (const auto& loop : loopbridge::live_loops()) last_id_ = std::max(last_id_, loop.id());
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, kRowWatchdog, [this] { return done_; })) return;
      fired_ = true;
      lock.unlock();
      for (const auto& loop : loopbridge::live_loops()) {
        if (loop.id() > last_id_) loop.request_stop({.cancel_timeout = 1s, .hook_timeout = 1s});
      }
    });
  }
  ~RowWatchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  RowWatchdog(const RowWatchdog&) = delete;
  RowWatchdog& operator=(const RowWatchdog&) = delete;
  bool fired() const { return fired_.load(); }

private:
  std::uint64_t last_id_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

long long ms(chrono::steady_clock::duration d) {
  return static_cast<long long>(chrono::duration_cast<chrono::microseconds>(d).count()) / 1000;
}

/// What a row did.
struct RowResult {
  bool as_expected = false;
  std::string observed;
};

/// Runs a row and judges what it did.
RowResult run_row(const Row& row) {
  enum class Outcome { ok, timed_out, invalid_argument, other };
  Outcome outcome = Outcome::other;
  std::string message;
  g_call_time.reset();
  const auto start = chrono::steady_clock::now();
  bool watchdog_fired = false;
  {
    RowWatchdog watchdog;
    try {
      outcome = row.call() == Got::ok ? Outcome::ok : Outcome::timed_out;
    } catch (const InvalidArgument& e) {
      outcome = Outcome::invalid_argument;
      message = e.what();
    } catch (const std::exception& e) {
      message = std::string("unexpected exception: ") + e.what();
    } catch (...) {
      message = "unexpected exception of an unknown type";
    }
    watchdog_fired = watchdog.fired();
  }
  const auto total = chrono::steady_clock::now() - start;
  const auto call = g_call_time.value_or(total);

  RowResult result;
  switch (row.expect) {
    case Expect::refused: result.as_expected = outcome == Outcome::invalid_argument && call < kQuick; break;
    case Expect::returns: result.as_expected = outcome == Outcome::ok && call < kSlow; break;
    case Expect::times_out: result.as_expected = outcome == Outcome::timed_out && call < kQuick; break;
    case Expect::waits: result.as_expected = outcome == Outcome::ok && call >= kMinWait && call < kSlow; break;
  }
  result.as_expected = result.as_expected && !watchdog_fired;
  std::ostringstream out;
  switch (outcome) {
    case Outcome::ok: out << "returned ok"; break;
    case Outcome::timed_out: out << "timed out"; break;
    case Outcome::invalid_argument: out << "InvalidArgument (" << message << ")"; break;
    case Outcome::other: out << message; break;
  }
  out << " after " << ms(call) << " ms (row " << ms(total) << " ms)";
  if (watchdog_fired) out << "; HUNG: the row watchdog stopped its loops after " << ms(kRowWatchdog) << " ms";
  result.observed = out.str();
  return result;
}

/// The test's fixture: LoopHygiene with a deadline short of ctest's 60 s.
class Fixture : public loopbridge::testing::LoopHygiene {
public:
  Fixture() { set_deadline(50s); }
};

}  // namespace duration_table

TEST_CASE_METHOD(duration_table::Fixture, "every duration the API takes is refused when negative and saturates when huge",
                 "[loop][duration]") {
  const std::vector<duration_table::Row> rows = duration_table::table();
  std::size_t failed = 0;
  for (const auto& row : rows) {
    const duration_table::RowResult result = duration_table::run_row(row);
    INFO(row.what);
    INFO("  expected: " << duration_table::to_string(row.expect));
    INFO("  observed: " << result.observed);
    CHECK(result.as_expected);
    if (!result.as_expected) ++failed;
  }
  INFO(rows.size() << " rows, " << failed << " not as documented");
  CHECK(failed == 0);
}
