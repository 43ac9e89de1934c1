#include "scenario.hpp"

#include "ledger.hpp"
#include "workload.hpp"

#include <loopbridge/loopbridge.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <typeinfo>

namespace loopbridge::reliability {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ------------------------------------------------------------------ outcomes

enum class Kind : std::uint8_t { value, own_error, cancelled, abandoned, rejected };
using KindSet = std::uint8_t;
constexpr KindSet bit(Kind k) { return static_cast<KindSet>(1u << static_cast<unsigned>(k)); }
constexpr KindSet kEndedByLoop = bit(Kind::cancelled) | bit(Kind::abandoned) | bit(Kind::rejected);

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::value: return "value";
    case Kind::own_error: return "own error";
    case Kind::cancelled: return "TaskCancelled";
    case Kind::abandoned: return "TaskAbandoned";
    case Kind::rejected: return "LoopStopped";
  }
  return "?";
}

struct Tracked {
  TaskHandle<int> handle;
  Op op;
  KindSet allowed;
};

void count(Ledger& ledger, Kind kind) {
  switch (kind) {
    case Kind::value: ledger.values.fetch_add(1); break;
    case Kind::own_error: ledger.own_errors.fetch_add(1); break;
    case Kind::cancelled: ledger.cancelled.fetch_add(1); break;
    case Kind::abandoned: ledger.abandoned.fetch_add(1); break;
    case Kind::rejected: ledger.rejected.fetch_add(1); break;
  }
}

/// Classifies the exception being handled; false for one that no operation may end with.
bool classify_current(Kind& kind, std::string& what) {
  try {
    throw;
  } catch (const TaskAbandoned&) {
    kind = Kind::abandoned;
  } catch (const TaskCancelled&) {
    kind = Kind::cancelled;
  } catch (const LoopStopped&) {
    kind = Kind::rejected;
  } catch (const Fault&) {
    kind = Kind::own_error;
  } catch (const HostNotWaiting&) {
    kind = Kind::own_error;
  } catch (const std::exception& e) {
    what = std::string(typeid(e).name()) + ": " + e.what();
    return false;
  } catch (...) {
    what = "non-standard exception";
    return false;
  }
  return true;
}

void settle_and_count(Ledger& ledger, Tracked& tracked, std::chrono::milliseconds bound) {
  if (tracked.handle.wait_for(bound) != std::future_status::ready) {
    ledger.violation(std::string(op_name(tracked.op)) + ": handle not settled " + std::to_string(bound.count()) +
                     " ms after the loop ended");
    return;
  }
  Kind kind = Kind::value;
  std::string what;
  try {
    if (tracked.handle.get() != kValue) ledger.violation(std::string(op_name(tracked.op)) + ": wrong value");
  } catch (...) {
    if (!classify_current(kind, what)) {
      ledger.violation(std::string(op_name(tracked.op)) + ": unexpected error " + what);
      return;
    }
  }
  if ((tracked.allowed & bit(kind)) == 0) {
    ledger.violation(std::string(op_name(tracked.op)) + ": ended with " + kind_name(kind) + ", which it cannot");
  }
  count(ledger, kind);
}

// ------------------------------------------------------------------ host threads

/// One host thread's run through its operations.
class Host {
public:
  Host(const Scenario& scenario, std::size_t index, LoopHandle loop, LedgerPtr ledger, std::atomic<std::size_t>& done)
      : scenario_(scenario),
        ops_(scenario.threads[index]),
        rng_(scenario.seed * 1000003u + index + 1),
        loop_(std::move(loop)),
        ledger_(std::move(ledger)),
        done_(done) {}

  void run() {
    for (Op op : ops_) {
      try {
        step(op);
      } catch (const std::exception& e) {
        ledger_->violation(std::string(op_name(op)) + " threw on the host: " + typeid(e).name() + ": " + e.what());
      } catch (...) {
        ledger_->violation(std::string(op_name(op)) + " threw a non-standard exception on the host");
      }
      ledger_->operations.fetch_add(1);
      done_.fetch_add(1);
      done_.notify_all();
    }
  }

  std::vector<Tracked>& tracked() { return tracked_; }
  std::vector<TaskHandle<std::size_t>>& cancel_alls() { return cancel_alls_; }

private:
  std::uint32_t sleep() { return static_cast<std::uint32_t>(rng_() % (scenario_.max_sleep_us + 1)); }
  bool one_in(unsigned n) { return rng_() % n == 0; }

  template <class F>
  void track(Op op, F&& fn, KindSet allowed) {
    ledger_->submissions.fetch_add(1);
    tracked_.push_back({loop_.submit(std::forward<F>(fn)), op, allowed});
  }

  template <class F>
  void post(F&& fn) {
    ledger_->submissions.fetch_add(1);
    try {
      loop_.post(std::forward<F>(fn));
      ledger_->posts_accepted.fetch_add(1);
    } catch (const LoopStopped&) {
      ledger_->posts_refused_at_call.fetch_add(1);
    }
  }

  TaskHandle<int>* some_handle() {
    if (tracked_.empty()) return nullptr;
    Tracked& t = tracked_[rng_() % tracked_.size()];
    return t.handle.valid() ? &t.handle : nullptr;
  }

  // run() and how it ended; a run that returns a value is one completed submission.
  template <class F>
  void run_and_count(Op op, F&& fn, Clock::duration timeout, KindSet allowed, bool timeout_expected) {
    ledger_->submissions.fetch_add(1);
    Kind kind = Kind::value;
    try {
      if (loopbridge::run(loop_, std::forward<F>(fn), timeout) != kValue) ledger_->violation("run: wrong value");
    } catch (const Timeout&) {
      // The task was cancelled (it cannot finish by itself): it ends cancelled, abandoned if
      // a stop overtook its unwinding, or refused if a stop came while it was still queued.
      if (!timeout_expected) ledger_->violation(std::string(op_name(op)) + ": run() timed out");
      ledger_->run_timeouts.fetch_add(1);
      return;
    } catch (...) {
      std::string what;
      if (!classify_current(kind, what)) {
        ledger_->violation(std::string(op_name(op)) + ": run() threw " + what);
        return;
      }
    }
    if ((allowed & bit(kind)) == 0) {
      ledger_->violation(std::string(op_name(op)) + ": run() ended with " + kind_name(kind) + ", which it cannot");
    }
    count(*ledger_, kind);
  }

  void step(Op op) {
    const LedgerPtr& ledger = ledger_;
    switch (op) {
      case Op::submit_coroutine: {
        auto us = sleep();
        track(op, [us] { return sleeper(us); }, bit(Kind::value) | kEndedByLoop);
        break;
      }
      case Op::submit_callable:
        // Runs inline: a cancel reaches it only before it starts; it is never abandoned.
        track(op, [] { return kValue; }, bit(Kind::value) | bit(Kind::cancelled) | bit(Kind::rejected));
        break;
      case Op::submit_throwing:
        if (one_in(2)) {
          track(op, [ledger]() -> int { ledger->throw_fault("callable"); },
                bit(Kind::own_error) | bit(Kind::cancelled) | bit(Kind::rejected));
        } else {
          auto us = sleep();
          track(op, [ledger, us] { return throwing_coroutine(ledger, us); }, bit(Kind::own_error) | kEndedByLoop);
        }
        break;
      case Op::submit_stubborn: {
        auto us = sleep();
        auto after = sleep() * 2;
        track(op, [us, after] { return stubborn(us, after); }, bit(Kind::value) | kEndedByLoop);
        break;
      }
      case Op::submit_nested: {
        auto us = sleep();
        bool inner_throws = one_in(3);
        track(op, [ledger, us, inner_throws] { return nested(ledger, us, inner_throws); },
              bit(Kind::value) | kEndedByLoop);
        break;
      }
      case Op::post_coroutine: {
        auto us = sleep();
        bool throws = one_in(3);
        post([ledger, us, throws]() -> asio::awaitable<void> {
          co_await sleep_us(us);
          if (throws) ledger->throw_fault("posted coroutine");
          ledger->posted_coroutines_finished.fetch_add(1);
        });
        break;
      }
      case Op::post_callable: {
        bool throws = one_in(3);
        post([ledger, throws] {
          if (throws) ledger->throw_fault("posted callable");
          ledger->posted_callables_finished.fetch_add(1);
        });
        break;
      }
      case Op::cancel_one:
        if (TaskHandle<int>* h = some_handle()) h->cancel();
        break;
      case Op::cancel_all:
        cancel_alls_.push_back(loop_.cancel_all());
        break;
      case Op::run_quick: {
        auto us = sleep();
        run_and_count(op, [us] { return sleeper(us); }, 10s, bit(Kind::value) | kEndedByLoop, false);
        break;
      }
      case Op::run_past_deadline: {
        auto timeout = std::chrono::microseconds(200 + sleep());
        run_and_count(op, [] { return forever(); }, timeout, kEndedByLoop, true);
        break;
      }
      case Op::call_host: {
        bool throws = one_in(3);
        if (one_in(2)) {
          run_and_count(op, [ledger, throws] { return calls_host(ledger, throws); }, 10s,
                        bit(Kind::value) | bit(Kind::own_error) | kEndedByLoop, false);
        } else {
          // Submitted, then waited on: the call may come before the wait (HostNotWaiting).
          track(op, [ledger, throws] { return calls_host(ledger, throws); },
                bit(Kind::value) | bit(Kind::own_error) | kEndedByLoop);
          if (tracked_.back().handle.wait_for(10s) != std::future_status::ready) {
            ledger_->violation("call_host: the task did not settle while its host waited");
          }
        }
        break;
      }
      case Op::to_thread: {
        auto us = sleep();
        bool throws = one_in(3);
        bool detach = one_in(4);
        track(op, [ledger, us, throws, detach] { return offload(ledger, us, throws, detach); },
              bit(Kind::value) | bit(Kind::own_error) | kEndedByLoop);
        break;
      }
      case Op::wait_some:
        if (TaskHandle<int>* h = some_handle()) h->wait_for(std::chrono::microseconds(rng_() % 1000));
        break;
      case Op::stop_from_task: {
        StopOptions options{.drain_timeout = scenario_.stop.drain, .cancel_timeout = scenario_.stop.cancel};
        track(op,
              [ledger, options] {
                if (BackgroundLoop* self = current_loop()) {
                  if (self->stop(options).joined) ledger->violation("stop() on the loop thread joined");
                }
                return kValue;
              },
              bit(Kind::value) | bit(Kind::cancelled) | bit(Kind::rejected));
        break;
      }
      case Op::count:
        break;
    }
  }

  const Scenario& scenario_;
  const std::vector<Op>& ops_;
  std::mt19937_64 rng_;
  LoopHandle loop_;
  LedgerPtr ledger_;
  std::atomic<std::size_t>& done_;
  std::vector<Tracked> tracked_;
  std::vector<TaskHandle<std::size_t>> cancel_alls_;
};

// ------------------------------------------------------------------ reconciliation

struct Check {
  Ledger& ledger;
  void equal(const char* what, std::uint64_t loop, std::uint64_t hosts) {
    if (loop != hosts) {
      ledger.violation(std::string(what) + ": loop says " + std::to_string(loop) + ", hosts say " + std::to_string(hosts));
    }
  }
  void within(const char* what, std::uint64_t loop, std::uint64_t low, std::uint64_t high) {
    if (loop < low || loop > high) {
      ledger.violation(std::string(what) + ": loop says " + std::to_string(loop) + ", hosts say between " +
                       std::to_string(low) + " and " + std::to_string(high));
    }
  }
};

// What the host threads, the posts and the error handler saw must be exactly what the loop
// counted. Two kinds of submission blur one line each, and are bounded instead:
// - a posted coroutine that a cancel reaches after its last suspension finishes its body and
//   still counts as cancelled (completed or cancelled);
// - a run() whose deadline passed cannot see its task again: it was cancelled, abandoned
//   by a stop, or, still queued when a stop came, refused (cancelled, abandoned or
//   rejected).
void reconcile(Ledger& l, const LoopStats& s) {
  Check check{l};
  check.equal("in flight at the end", s.in_flight, 0);
  check.equal("queued at the end", s.queued, 0);
  check.equal("submitted", s.submitted, l.submissions);
  check.equal("submitted = completed + failed + cancelled + abandoned + rejected + in flight", s.submitted,
              s.completed + s.failed + s.cancelled + s.abandoned + s.rejected + s.in_flight);
  check.equal("failed", s.failed, l.own_errors + l.posted_failures);
  check.equal("errors reported", s.errors_reported, l.errors_reported);
  const std::uint64_t refused = l.rejected + l.posts_refused_at_call + l.posts_refused_in_queue;
  check.within("rejected", s.rejected, refused, refused + l.run_timeouts);
  const std::uint64_t posts_run = l.posts_accepted - l.posted_failures - l.posts_refused_in_queue;
  check.equal("completed + cancelled + abandoned + rejected", s.completed + s.cancelled + s.abandoned + s.rejected,
              l.values + l.cancelled + l.abandoned + refused + l.run_timeouts + posts_run);
  check.within("completed", s.completed, l.values + l.posted_callables_finished,
               l.values + l.posted_callables_finished + l.posted_coroutines_finished);
  check.within("cancelled + abandoned", s.cancelled + s.abandoned, l.cancelled + l.abandoned,
               l.cancelled + l.abandoned + l.run_timeouts + posts_run);
  if (s.cancelled < l.cancelled) check.equal("cancelled (at least)", s.cancelled, l.cancelled);
  if (s.abandoned < l.abandoned) check.equal("abandoned (at least)", s.abandoned, l.abandoned);
}

// stop()'s report and stats() read the same counters.
void compare(Ledger& l, const ShutdownReport& r, const LoopStats& s) {
  Check check{l};
  check.equal("report and stats: submitted", r.submitted, s.submitted);
  check.equal("report and stats: completed", r.completed, s.completed);
  check.equal("report and stats: failed", r.failed, s.failed);
  check.equal("report and stats: cancelled", r.cancelled, s.cancelled);
  check.equal("report and stats: abandoned", r.abandoned, s.abandoned);
  check.equal("report and stats: rejected", r.rejected, s.rejected);
}

}  // namespace

const char* op_name(Op op) noexcept {
  switch (op) {
    case Op::submit_coroutine: return "submit_coroutine";
    case Op::submit_callable: return "submit_callable";
    case Op::submit_throwing: return "submit_throwing";
    case Op::submit_stubborn: return "submit_stubborn";
    case Op::submit_nested: return "submit_nested";
    case Op::post_coroutine: return "post_coroutine";
    case Op::post_callable: return "post_callable";
    case Op::cancel_one: return "cancel_one";
    case Op::cancel_all: return "cancel_all";
    case Op::run_quick: return "run_quick";
    case Op::run_past_deadline: return "run_past_deadline";
    case Op::call_host: return "call_host";
    case Op::to_thread: return "to_thread";
    case Op::wait_some: return "wait_some";
    case Op::stop_from_task: return "stop_from_task";
    case Op::count: break;
  }
  return "?";
}

Scenario random_scenario(std::uint64_t seed, std::size_t threads, std::size_t ops_per_thread) {
  // Weights: common work often. A stop from inside a task is placed apart (below): at most
  // one per scenario, or the loop would end early nearly every time.
  static constexpr std::pair<Op, unsigned> kWeights[] = {
      {Op::submit_coroutine, 14}, {Op::submit_callable, 10}, {Op::submit_throwing, 6}, {Op::submit_stubborn, 3},
      {Op::submit_nested, 4},     {Op::post_coroutine, 5},   {Op::post_callable, 5},   {Op::cancel_one, 10},
      {Op::cancel_all, 2},        {Op::run_quick, 6},        {Op::run_past_deadline, 2}, {Op::call_host, 4},
      {Op::to_thread, 6},         {Op::wait_some, 8},
  };
  unsigned total_weight = 0;
  for (auto [op, w] : kWeights) total_weight += w;

  std::mt19937_64 rng(seed);
  Scenario s;
  s.seed = seed;
  s.threads.resize(threads);
  for (auto& ops : s.threads) {
    for (std::size_t i = 0; i < ops_per_thread; ++i) {
      unsigned pick = static_cast<unsigned>(rng() % total_weight);
      for (auto [op, w] : kWeights) {
        if (pick < w) {
          ops.push_back(op);
          break;
        }
        pick -= w;
      }
    }
  }
  if (rng() % 4 == 0) {
    auto& ops = s.threads[rng() % threads];
    ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(rng() % (ops.size() + 1)), Op::stop_from_task);
  }
  s.ending = static_cast<Ending>(rng() % static_cast<unsigned>(Ending::count));
  s.end_after_ops = static_cast<std::size_t>(rng() % (threads * ops_per_thread + 1));
  static constexpr std::chrono::nanoseconds kDrains[] = {0ms, 0ms, 1ms};
  static constexpr std::chrono::nanoseconds kCancels[] = {5s, 5s, 1ms, 0ms};
  s.stop.drain = kDrains[rng() % 3];
  s.stop.cancel = kCancels[rng() % 4];
  s.throwing_stop_hook = rng() % 2 == 0;
  s.throwing_error_handler = rng() % 2 == 0;
  return s;
}

std::string Outcome::describe(const Scenario& scenario) const {
  std::ostringstream out;
  out << "scenario seed " << scenario.seed << " (" << scenario.threads.size() << " threads, ending "
      << (scenario.ending == Ending::stop ? "stop" : "destructor") << " after " << scenario.end_after_ops
      << " operations): " << violations.size() << " violation(s)\n";
  for (const auto& v : violations) out << "  " << v << "\n";
  return out.str();
}

Outcome run_scenario(const Scenario& scenario, Limits limits) {
  auto ledger = std::make_shared<Ledger>();
  const bool throwing_handler = scenario.throwing_error_handler;

  LoopOptions options{.name = "lb-stress"};
  options.destructor_stop = {.drain_timeout = scenario.stop.drain, .cancel_timeout = scenario.stop.cancel};
  options.error_handler = [ledger, throwing_handler](std::exception_ptr error, std::string_view context) {
    const auto n = ledger->errors_reported.fetch_add(1) + 1;
    if (context == "posted task") {
      ledger->posted_failures.fetch_add(1);
    } else if (context == "post()") {
      ledger->posts_refused_in_queue.fetch_add(1);
    } else if (context == "a task being cancelled") {
      ledger->failures_while_cancelled.fetch_add(1);
    } else if (context == "an on_stop hook run by the destructor" && what_of(error) == "on_stop hook") {
      ledger->hook_errors_reported.fetch_add(1);
    } else {
      ledger->violation("error handler got '" + std::string(context) + "': " + what_of(error));
    }
    if (throwing_handler && n % 3 == 0) ledger->throw_fault("error handler");
  };
  // A loaded machine (or a sanitizer) can make any stretch of work slow: counted, not printed.
  options.stall_handler = [ledger](const StallReport&) { ledger->stalls.fetch_add(1); };
  auto loop = std::make_unique<BackgroundLoop>(std::move(options));
  if (scenario.throwing_stop_hook) {
    loop->on_stop([ledger]() -> asio::awaitable<void> {
      ledger->throw_fault("on_stop hook");
      co_return;
    });
    loop->on_stop([]() -> asio::awaitable<void> { co_await sleep_us(500); });
  }
  loop->start();
  LoopHandle handle = loop->handle();

  std::size_t total_ops = 0;
  for (const auto& ops : scenario.threads) total_ops += ops.size();
  const std::size_t end_after = std::min(scenario.end_after_ops, total_ops);

  std::atomic<std::size_t> done{0};
  std::vector<std::unique_ptr<Host>> hosts;
  for (std::size_t i = 0; i < scenario.threads.size(); ++i) {
    hosts.push_back(std::make_unique<Host>(scenario, i, handle, ledger, done));
  }
  std::vector<std::thread> threads;
  for (auto& host : hosts) threads.emplace_back([&host] { host->run(); });

  // The end comes once `end_after` operations were done (or all of them).
  for (std::size_t seen = done.load(); seen < end_after; seen = done.load()) done.wait(seen);
  const auto end_begin = Clock::now();
  ShutdownReport first_report;
  if (scenario.ending == Ending::stop) {
    first_report = loop->stop({.drain_timeout = scenario.stop.drain, .cancel_timeout = scenario.stop.cancel});
    if (!first_report.joined) ledger->violation("stop() did not join the loop thread");
  } else {
    loop.reset();
  }
  Outcome outcome;
  outcome.end_duration = Clock::now() - end_begin;
  const auto end_bound = scenario.stop.drain + scenario.stop.cancel + 2 * (5s + scenario.stop.cancel) + limits.end_margin;
  if (outcome.end_duration > end_bound) ledger->violation("the loop took too long to end");

  for (auto& t : threads) t.join();
  for (auto& host : hosts) {
    for (auto& tracked : host->tracked()) settle_and_count(*ledger, tracked, limits.settle);
    for (auto& group : host->cancel_alls()) {
      if (group.wait_for(limits.settle) != std::future_status::ready) ledger->violation("cancel_all handle not settled");
    }
  }

  // The handle outlives the BackgroundLoop: its counts cover the whole life, submissions
  // refused after the end included.
  const LoopStats stats = handle.stats();
  outcome.loop_submitted = stats.submitted;
  reconcile(*ledger, stats);
  if (loop) {
    ShutdownReport report = loop->stop();  // the first stop's report, counts brought up to date
    compare(*ledger, report, stats);
    if (scenario.throwing_stop_hook) {
      bool found = false;
      for (const auto& e : report.hook_errors) found = found || what_of(e) == "on_stop hook";
      if (!found) ledger->violation("the throwing on_stop hook's error is missing from the report");
    }
    loop.reset();
  } else if (scenario.throwing_stop_hook && ledger->hook_errors_reported != 1) {
    ledger->violation("the destructor reported the throwing on_stop hook " + std::to_string(ledger->hook_errors_reported) +
                      " times, not once");
  }

  const Ledger& l = *ledger;
  outcome.operations = l.operations;
  outcome.submissions = l.submissions;
  outcome.values = l.values;
  outcome.own_errors = l.own_errors + l.posted_failures;
  outcome.cancelled = l.cancelled;
  outcome.abandoned = l.abandoned;
  outcome.rejected = l.rejected + l.posts_refused_at_call + l.posts_refused_in_queue;
  outcome.run_timeouts = l.run_timeouts;
  outcome.posts_accepted = l.posts_accepted;
  outcome.posts_refused_at_call = l.posts_refused_at_call;
  outcome.faults_injected = l.faults;
  outcome.errors_reported = l.errors_reported;
  {
    std::lock_guard lock(ledger->mutex);
    outcome.violations = ledger->violations;
  }
  return outcome;
}

}  // namespace loopbridge::reliability
