// The re-entrancy matrix: every lifecycle and submission call, made from every context in
// which loopbridge runs user code, on the loop (or pool, or default loop) that runs that
// code. Each cell works or throws its documented typed error within a bound; none hangs,
// crashes or leaves a handle unsettled. The expected table below is the specification, and
// docs/reliability.md prints it. The exit-time contexts (a static destructor, an atexit
// handler, a detached thread at exit) are tests/testing/exit_scenarios.cpp's.

#include <loopbridge/bridge/default_loop.hpp>
#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_pool.hpp>

#include "figures.hpp"
#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

enum class Caller {
  on_start_hook,
  on_stop_hook,
  task_body,
  plain_callable,
  error_handler,
  on_settled_callback,
  to_thread_function,
  call_host_function,
  capture_destructor,
};

const char* name_of(Caller context) {
  switch (context) {
    case Caller::on_start_hook: return "on_start hook";
    case Caller::on_stop_hook: return "on_stop hook";
    case Caller::task_body: return "task body";
    case Caller::plain_callable: return "plain callable";
    case Caller::error_handler: return "error handler";
    case Caller::on_settled_callback: return "on_settled callback";
    case Caller::to_thread_function: return "to_thread function";
    case Caller::call_host_function: return "call_host function";
    case Caller::capture_destructor: return "capture's destructor";
  }
  return "?";
}

enum class Call {
  start,
  run_here,
  stop,
  request_stop,
  add_hook,
  submit,
  post,
  cancel,
  cancel_all,
  run,
  destructor,
  default_loop,
  reset_default_loop,
  set_default_loop_factory,
  pool_start,
  pool_stop,
};
constexpr std::array kCalls{Call::start,        Call::run_here,     Call::stop,
                            Call::request_stop, Call::add_hook,     Call::submit,
                            Call::post,         Call::cancel,       Call::cancel_all,
                            Call::run,          Call::destructor,   Call::default_loop,
                            Call::reset_default_loop, Call::set_default_loop_factory, Call::pool_start,
                            Call::pool_stop};

const char* name_of(Call call) {
  switch (call) {
    case Call::start: return "start()";
    case Call::run_here: return "run_here()";
    case Call::stop: return "stop()";
    case Call::request_stop: return "request_stop()";
    case Call::add_hook: return "on_stop() (hook registration)";
    case Call::submit: return "submit()";
    case Call::post: return "post()";
    case Call::cancel: return "cancel()";
    case Call::cancel_all: return "cancel_all()";
    case Call::run: return "run()";
    case Call::destructor: return "~BackgroundLoop()";
    case Call::default_loop: return "default_loop()";
    case Call::reset_default_loop: return "reset_default_loop()";
    case Call::set_default_loop_factory: return "set_default_loop_factory()";
    case Call::pool_start: return "LoopPool::start()";
    case Call::pool_stop: return "LoopPool::stop()";
  }
  return "?";
}

/// What a call acts on: the loop whose code runs it, the pool that loop belongs to, or the
/// default loop, whose code runs it.
enum class Subject { loop, pool, default_loop };

Subject subject_of(Call call) {
  switch (call) {
    case Call::pool_start:
    case Call::pool_stop: return Subject::pool;
    case Call::default_loop:
    case Call::reset_default_loop:
    case Call::set_default_loop_factory: return Subject::default_loop;
    default: return Subject::loop;
  }
}

bool on_loop_thread(Caller context) {
  return context != Caller::to_thread_function && context != Caller::call_host_function;
}

/// The specification: what each call does in each context. "ok" is a call that returned;
/// otherwise the loopbridge error it throws, at once.
std::string expected(Caller context, Call call) {
  const bool loop_thread = on_loop_thread(context);
  switch (call) {
    case Call::start:
    case Call::add_hook:
    case Call::pool_start: return "InvalidState";  // started already
    case Call::run_here: return loop_thread ? "DeadlockError" : "InvalidState";
    case Call::stop:          // requests the stop and returns: it would wait for itself
    case Call::request_stop:
    case Call::submit:        // a stopping loop answers with a settled handle
    case Call::cancel:
    case Call::cancel_all:
    case Call::destructor:    // requests the stop and reports the misuse: never throws
    case Call::set_default_loop_factory: return "ok";
    case Call::post: return context == Caller::on_stop_hook ? "LoopStopped" : "ok";
    case Call::run:
    case Call::reset_default_loop:
    case Call::pool_stop: return loop_thread ? "DeadlockError" : "ok";
    case Call::default_loop: return context == Caller::on_start_hook ? "InvalidState" : "ok";
  }
  return "?";
}

StopOptions reentry_stop() { return {.cancel_timeout = std::chrono::seconds(2), .hook_timeout = std::chrono::seconds(2)}; }

asio::awaitable<void> parks_for_an_hour() { co_await sleep_for(std::chrono::hours(1)); }

/// One cell: a fresh subject, the context installed on it, the call made once from there.
class Cell {
public:
  Cell(Caller context, Call call) : context_(context), call_(call) {}

  /// Runs the cell; returns what the call did.
  std::string run() {
    switch (subject_of(call_)) {
      case Subject::loop: run_on_loop(); break;
      case Subject::pool: run_on_pool(); break;
      case Subject::default_loop: run_on_default_loop(); break;
    }
    for (auto& handle : handles_) require_settles(handle);
    for (auto& group : groups_) require_settles(group);
    std::lock_guard lock(mutex_);
    return outcome_;
  }

private:
  LoopOptions options() {
    LoopOptions options{.name = "lb-reenter"};
    options.destructor_stop = reentry_stop();
    options.start_timeout = std::chrono::seconds(10);
    // Some cells are misuses that loopbridge reports (a destructor on the loop thread);
    // the error handler context runs the cell from here.
    options.error_handler = [this](std::exception_ptr, std::string_view) {
      if (context_ == Caller::error_handler) run_cell();
    };
    return options;
  }

  Hook cell_hook() {
    return [this]() -> asio::awaitable<void> {
      run_cell();
      co_return;
    };
  }
  Hook start_hook() { return context_ == Caller::on_start_hook ? cell_hook() : Hook{}; }
  Hook stop_hook() { return context_ == Caller::on_stop_hook ? cell_hook() : Hook{}; }

  void run_on_loop() {
    loop_ = std::make_unique<BackgroundLoop>(options());
    handle_ = loop_->handle();
    if (auto hook = start_hook()) loop_->on_start(std::move(hook));
    if (auto hook = stop_hook()) loop_->on_stop(std::move(hook));
    loop_->start();
    drive();
    // The loop may be gone (the cell destroyed it) or stopping: end it either way.
    if (loop_) {
      ShutdownReport report = loop_->stop(reentry_stop());
      CHECK((report.joined || call_ == Call::destructor));
    }
    REQUIRE(handle_.wait_stopped(kDeadline));
    loop_.reset();
  }

  void run_on_pool() {
    PoolOptions options{.loops = 1, .loop = this->options()};
    pool_ = std::make_unique<LoopPool>(options);
    handle_ = pool_->loop(0);
    if (start_hook() || stop_hook()) pool_->on_start_stop(start_hook(), stop_hook());
    pool_->start();
    drive();
    ShutdownReport report = pool_->stop(reentry_stop());
    CHECK(report.joined);
    REQUIRE(handle_.wait_stopped(kDeadline));
    pool_.reset();
  }

  void run_on_default_loop() {
    set_default_loop_factory([this] {
      auto loop = std::make_unique<BackgroundLoop>(options());
      if (auto hook = start_hook()) loop->on_start(std::move(hook));
      if (auto hook = stop_hook()) loop->on_stop(std::move(hook));
      return loop;
    });
    handle_ = default_loop();
    drive();
    reset_default_loop(reentry_stop());
    set_default_loop_factory({});
    REQUIRE(handle_.wait_stopped(kDeadline));
  }

  /// Makes the subject run the context's code (an on_start hook has run already).
  void drive() {
    switch (context_) {
      case Caller::on_start_hook: break;
      case Caller::on_stop_hook: handle_.request_stop(reentry_stop()); break;
      case Caller::task_body:
        keep(handle_.submit([this]() -> asio::awaitable<void> {
          run_cell();
          co_return;
        }));
        break;
      case Caller::plain_callable: keep(handle_.submit([this] { run_cell(); })); break;
      case Caller::error_handler: handle_.post([] { throw std::runtime_error("makes the loop call its error handler"); }); break;
      case Caller::on_settled_callback: {
        auto go = std::make_shared<Gate>();
        auto task = handle_.submit([go] { go->wait(); });
        std::move(task).on_settled([this](TaskHandle<void>&& settled) {
          run_cell();
          try {
            settled.result();
          } catch (const Error&) {
          }
        });
        go->open();
        break;
      }
      case Caller::to_thread_function:
        keep(handle_.submit([this]() -> asio::awaitable<void> {
          auto offload = to_thread([this] { run_cell(); });
          co_await std::move(offload);
        }));
        break;
      case Caller::call_host_function:
        try {
          loopbridge::run(
              handle_,
              [this]() -> asio::awaitable<void> {
                auto call = call_host([this] { run_cell(); });
                co_await std::move(call);
              },
              kDeadline);
        } catch (const Error&) {
          // The stop the cell asked for may cancel the call: what counts is the cell.
        }
        break;
      case Caller::capture_destructor: {
        struct RunsCellWhenDestroyed {
          explicit RunsCellWhenDestroyed(Cell* owner) : cell(owner) {}
          Cell* cell;
          ~RunsCellWhenDestroyed() { cell->run_cell(); }
        };
        // Destroyed with the callable, on the loop thread, once it has run.
        keep(handle_.submit([witness = std::make_shared<RunsCellWhenDestroyed>(this)] {}));
        break;
      }
    }
    REQUIRE(done_.wait());
  }

  void run_cell() {
    if (ran_.exchange(true)) return;
    std::string outcome = call();
    {
      std::lock_guard lock(mutex_);
      outcome_ = std::move(outcome);
    }
    done_.open();
  }

  /// Makes the call on the subject; returns "ok" or the name of the error it threw.
  std::string call() {
    try {
      switch (call_) {
        case Call::start: loop_->start(); break;
        case Call::run_here: (void)loop_->run_here(); break;
        case Call::stop: (void)loop_->stop(reentry_stop()); break;
        case Call::request_stop: handle_.request_stop(reentry_stop()); break;
        case Call::add_hook: loop_->on_stop([]() -> asio::awaitable<void> { co_return; }); break;
        case Call::submit: keep(handle_.submit([] {})); break;
        case Call::post: handle_.post([] {}); break;
        case Call::cancel: {
          auto task = handle_.submit(parks_for_an_hour);
          task.cancel();
          keep(std::move(task));
          break;
        }
        case Call::cancel_all: keep_group(handle_.cancel_all()); break;
        case Call::run: (void)loopbridge::run(handle_, [] { return 1; }, kDeadline); break;
        case Call::destructor: loop_.reset(); break;
        case Call::default_loop: (void)loopbridge::default_loop(); break;
        case Call::reset_default_loop: (void)reset_default_loop(reentry_stop()); break;
        case Call::set_default_loop_factory: set_default_loop_factory({}); break;
        case Call::pool_start: pool_->start(); break;
        case Call::pool_stop: (void)pool_->stop(reentry_stop()); break;
      }
      return "ok";
    } catch (const InvalidState&) {
      return "InvalidState";
    } catch (const DeadlockError&) {
      return "DeadlockError";
    } catch (const LoopStopped&) {
      return "LoopStopped";
    } catch (const InvalidArgument&) {
      return "InvalidArgument";
    } catch (const Timeout&) {
      return "Timeout";
    } catch (const Error& e) {
      return std::string("unexpected loopbridge error: ") + e.what();
    } catch (const std::exception& e) {
      return std::string("unexpected: ") + e.what();
    }
  }

  void keep(TaskHandle<void> handle) {
    std::lock_guard lock(mutex_);
    handles_.push_back(std::move(handle));
  }
  void keep_group(TaskHandle<std::size_t> group) {
    std::lock_guard lock(mutex_);
    groups_.push_back(std::move(group));
  }

  const Caller context_;
  const Call call_;
  std::unique_ptr<BackgroundLoop> loop_;
  std::unique_ptr<LoopPool> pool_;
  LoopHandle handle_;
  std::atomic<bool> ran_{false};
  Gate done_;
  std::mutex mutex_;
  std::string outcome_ = "(the call did not run)";
  std::vector<TaskHandle<void>> handles_;
  std::vector<TaskHandle<std::size_t>> groups_;
};

/// Appends the row to LOOPBRIDGE_REENTRANCY_TABLE, which tests/reliability/report.sh turns
/// into docs/reliability.md's table.
void publish(Caller context, Call call, const std::string& outcome) {
  const char* path = std::getenv("LOOPBRIDGE_REENTRANCY_TABLE");
  if (path == nullptr || *path == '\0') return;
  if (std::FILE* table = std::fopen(path, "a")) {
    std::fprintf(table, "%s|%s|%s\n", name_of(context), name_of(call), outcome.c_str());
    std::fclose(table);
  }
}

void check_every_call_from(Caller context) {
  for (Call call : kCalls) {
    INFO(name_of(call) << " from the " << name_of(context));
    const auto began = std::chrono::steady_clock::now();
    const std::string outcome = Cell(context, call).run();
    CHECK(outcome == expected(context, call));
    CHECK(std::chrono::steady_clock::now() - began < kDeadline);
    publish(context, call, outcome);
    record_figure("reentrancy", "cells", 1);
  }
}

}  // namespace

TEST_CASE("every call made from an on_start hook works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::on_start_hook);
}
TEST_CASE("every call made from an on_stop hook works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::on_stop_hook);
}
TEST_CASE("every call made from a task's coroutine works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::task_body);
}
TEST_CASE("every call made from a plain callable works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::plain_callable);
}
TEST_CASE("every call made from the error handler works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::error_handler);
}
TEST_CASE("every call made from an on_settled callback works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::on_settled_callback);
}
TEST_CASE("every call made from a to_thread function works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::to_thread_function);
}
TEST_CASE("every call made from a call_host function works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::call_host_function);
}
TEST_CASE("every call made from a capture's destructor works or fails at once", "[reliability][reentrancy]") {
  check_every_call_from(Caller::capture_destructor);
}
