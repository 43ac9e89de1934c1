// The errors loopbridge throws at its callers, each provoked for real.

#include "catalogue.hpp"

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_pool.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace asio = boost::asio;

namespace loopbridge::test {
namespace {

asio::awaitable<void> no_op_hook() { co_return; }

// What `blocking` throws when called on a loop thread (through a task of `loop`).
template <class F>
void on_loop_thread(Catalogue& catalogue, const char* how, BackgroundLoop& loop, F blocking) {
  auto task = loop.submit([&catalogue, how, blocking] { catalogue.thrown(how, blocking); });
  if (task.wait_for(kDeadline) != std::future_status::ready) catalogue.miss(how);
}

}  // namespace

void provoke_argument_errors(Catalogue& catalogue) {
  catalogue.thrown("an empty loop name", [] { BackgroundLoop loop({.name = ""}); });
  catalogue.thrown("a loop name with NUL", [] { BackgroundLoop loop({.name = std::string("a\0b", 3)}); });
  catalogue.thrown("no worker threads", [] { BackgroundLoop loop({.worker_threads = 0}); });
  catalogue.thrown("a zero start_timeout", [] { BackgroundLoop loop({.start_timeout = std::chrono::seconds(0)}); });
  catalogue.thrown("a negative destructor stop deadline", [] {
    LoopOptions options;
    options.destructor_stop.cancel_timeout = -std::chrono::milliseconds(1);
    BackgroundLoop loop(options);
  });
  catalogue.thrown("a negative stall_threshold", [] {
    LoopOptions options;
    options.stall_threshold = -std::chrono::milliseconds(1);
    BackgroundLoop loop(options);
  });
  catalogue.thrown("a spin_before_sleep above 10 ms", [] {
    LoopOptions options;
    options.spin_before_sleep = std::chrono::milliseconds(11);
    BackgroundLoop loop(options);
  });
  catalogue.thrown("a stack_size out of range", [] {
    LoopOptions options;
    options.stack_size = 1;
    BackgroundLoop loop(options);
  });
  catalogue.thrown("a CPU that does not exist", [] {
    LoopOptions options;
    options.cpu_affinity = {1u << 20};
    BackgroundLoop loop(options);
  });

  BackgroundLoop loop({.name = "lb-msg-args"});
  catalogue.thrown("an empty hook", [&] { loop.on_start(nullptr); });
  catalogue.thrown("on_start_stop with one hook", [&] { loop.on_start_stop(no_op_hook, nullptr); });
  loop.start();
  catalogue.thrown("an empty callable", [&] { (void)loop.submit(std::function<int()>()); });
  catalogue.thrown("a negative full_wait", [&] {
    SubmitOptions options;
    options.when_full = QueueFullPolicy::wait;
    options.full_wait = -std::chrono::seconds(1);
    (void)loop.submit([] { return 1; }, options);
  });
  auto task = loop.submit([] { return 1; });
  catalogue.thrown("a negative wait_for timeout", [&] { (void)task.wait_for(-std::chrono::milliseconds(1)); });
  catalogue.thrown("a NaN wait_for timeout", [&] {
    (void)task.wait_for(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));
  });
  catalogue.thrown("a negative cancel_and_wait timeout",
                   [&] { (void)task.cancel_and_wait(-std::chrono::milliseconds(1)); });
  catalogue.thrown("a NaN deadline", [&] {
    using NanClock = std::chrono::time_point<std::chrono::steady_clock, std::chrono::duration<double>>;
    (void)task.cancel_and_wait(NanClock(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())));
  });
  catalogue.thrown("a negative wait_stopped timeout",
                   [&] { (void)loop.wait_stopped(-std::chrono::milliseconds(1)); });
  catalogue.thrown("a negative stop deadline", [&] { loop.stop({.drain_timeout = -std::chrono::milliseconds(1)}); });
  catalogue.thrown("a zero run() timeout", [&] { run(loop, [] { return 1; }, std::chrono::seconds(0)); });
  catalogue.thrown("a negative unwind_timeout", [&] {
    run(loop, [] { return 1; }, kDeadline, {.unwind_timeout = -std::chrono::milliseconds(1)});
  });
  (void)task.wait_for(kDeadline);
  loop.stop();

  LoopPool pool({.loops = 1});
  pool.start();
  catalogue.thrown("a negative LoopPool::cancel_all_and_wait timeout",
                   [&] { (void)pool.cancel_all_and_wait(-std::chrono::milliseconds(1)); });
  pool.stop();
}

void provoke_state_errors(Catalogue& catalogue) {
  BackgroundLoop loop({.name = "lb-msg-state"});
  catalogue.thrown("submit before start", [&] { (void)loop.submit([] { return 1; }); });
  loop.start();
  catalogue.thrown("start twice", [&] { loop.start(); });
  catalogue.thrown("a hook after start", [&] { loop.on_start(no_op_hook); });
  catalogue.thrown("to_thread off a loop thread", [] { (void)to_thread([] { return 1; }); });
  {
    LoopBlocker busy(loop);
    auto pending = loop.submit([] { return 1; });
    catalogue.thrown("result() before it settled", [&] { (void)pending.result(); });
  }
  TaskHandle<int> empty;
  catalogue.thrown("an empty TaskHandle", [&] { (void)empty.get(); });
  auto taken = loop.submit([] { return 1; });
  (void)taken.wait_for(kDeadline);
  (void)taken.get();
  catalogue.thrown("a result taken twice", [&] { (void)taken.get(); });
  catalogue.thrown("an empty LoopHandle", [] { (void)LoopHandle().submit([] {}); });

  BackgroundLoop other({.name = "lb-msg-other"});
  other.start();
  auto parked = other.submit([] { return sleep_for(std::chrono::hours(1)); });
  on_loop_thread(catalogue, "a TaskHandle wait on a loop thread", loop, [&] { parked.wait(); });
  on_loop_thread(catalogue, "cancel_and_wait on a loop thread", loop,
                 [&] { (void)parked.cancel_and_wait(std::chrono::milliseconds(1)); });
  on_loop_thread(catalogue, "run() on a loop thread", loop, [&] { run(other, [] { return 1; }, kDeadline); });
  on_loop_thread(catalogue, "stop() on another loop's thread", loop, [&] { other.stop(); });
  on_loop_thread(catalogue, "wait_stopped() on a loop thread", loop,
                 [&] { (void)other.wait_stopped(std::chrono::milliseconds(1)); });
  on_loop_thread(catalogue, "run_here() on a loop thread", loop, [] {
    BackgroundLoop inner({.name = "lb-msg-inner"});
    (void)inner.run_here();
  });
  other.stop();

  LoopPool pool({.loops = 1});
  pool.start();
  catalogue.thrown("LoopPool::start twice", [&] { pool.start(); });
  on_loop_thread(catalogue, "LoopPool::stop on a loop thread", loop, [&] { (void)pool.stop(); });
  {
    LoopHandle pool_loop = pool.loop(0);
    LoopBlocker busy(pool_loop);
    catalogue.thrown("LoopPool::cancel_all_and_wait past its deadline",
                     [&] { (void)pool.cancel_all_and_wait(std::chrono::milliseconds(5)); });
  }
  pool.stop();

  {
    BackgroundLoop full({.name = "lb-msg-full", .queue_capacity = 1});
    full.start();
    LoopBlocker busy(full);
    auto queued = full.submit([] { return 1; });
    catalogue.thrown("a full queue", [&] { (void)full.submit([] { return 1; }); });
  }
  loop.stop();
  catalogue.thrown("start after stop", [&] { loop.start(); });
}

}  // namespace loopbridge::test
