// Programs that end the process with loopbridge in every state, one per scenario (argv[1]):
// loops in every state at exit, and the exit-time contexts of the re-entrancy matrix (a
// static destructor, an atexit handler, a detached thread at exit; the other contexts are
// tests/reliability/reentrancy_test.cpp's). tests/testing/exit_case.py runs each one and
// checks its exit code, what it prints, its wall-clock time and that no sanitizer spoke.
//
// What runs when, at exit ([basic.start.term]): atexit handlers and the destructors of
// static objects run in the reverse order of their registration or construction. So
// g_exit_clock, made first, is destroyed last and times the whole exit-time stop; the
// default loop's exit hook, registered by the first default_loop(), runs before the
// function-local statics made before that call and after those made later; a handler that
// a scenario registers before its first default_loop() runs after that hook, but before
// g_static_loop (made before main) is destroyed.

#include <loopbridge/loopbridge.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define LOOPBRIDGE_LEAK_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOOPBRIDGE_LEAK_CHECKED 1
#endif
#endif
#ifndef LOOPBRIDGE_LEAK_CHECKED
#define LOOPBRIDGE_LEAK_CHECKED 0
#endif

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <typeinfo>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// ---- The exit's own clock ----

// When the scenario began to end the process (0: not yet), and how long the exit may take.
std::atomic<std::int64_t> g_exit_began_ms{0};
std::atomic<std::int64_t> g_exit_bound_ms{0};
// The status a fork child ends with (-1: not a fork child). Under LeakSanitizer the child
// ends with it once the exit is timed, before the at-exit leak scan: in a child of a
// multithreaded process that scan cannot suspend the parent's threads, so the blocks only
// they pointed to look leaked, whatever the program does (it reported them in some runs).
std::atomic<int> g_fork_child_status{-1};

void exit_begins(std::chrono::milliseconds bound) {
  g_exit_bound_ms.store(bound.count());
  g_exit_began_ms.store(now_ms());
}

// Made first, so destroyed last: after every atexit handler and static object of this
// program, the loops' exit-time stops included. Over its bound, the exit fails.
struct ExitClock {
  ~ExitClock() {
    const std::int64_t began = g_exit_began_ms.load();
    if (began == 0) return;
    const std::int64_t took = now_ms() - began;
    std::printf("exit took %lld ms\n", static_cast<long long>(took));
    if (took > g_exit_bound_ms.load()) {
      std::printf("FAILED: the exit took longer than its bound of %lld ms\n",
                  static_cast<long long>(g_exit_bound_ms.load()));
      std::fflush(stdout);
      std::_Exit(1);
    }
#if LOOPBRIDGE_LEAK_CHECKED
    if (const int status = g_fork_child_status.load(); status >= 0) {
      std::fflush(stdout);
      std::_Exit(status);
    }
#endif
  }
};
ExitClock g_exit_clock;

// A loop at namespace scope: made during static initialisation, in no set order with
// loopbridge's own statics, and destroyed after everything that main registered.
BackgroundLoop g_static_loop({.name = "lb-static"});

int fail(const char* why) {
  std::printf("FAILED: %s\n", why);
  return 1;
}

/// Parked on a timer for an hour: only a cancel (or a stop) ends it.
asio::awaitable<void> park() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
  co_await timer.async_wait(asio::use_awaitable);
}

bool eventually(const std::function<bool()>& done, Clock::duration within) {
  const auto deadline = Clock::now() + within;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                         &std::free);
  std::string name = status == 0 ? demangled.get() : type.name();
  constexpr std::string_view ours = "loopbridge::";
  return name.starts_with(ours) ? name.substr(ours.size()) : name;
}

// ---- 1. The default loop, with a task pending, after errors ----

int default_loop_with_pending_work_after_errors() {
  const LoopHandle loop = default_loop();
  try {
    run(loop, park, 50ms);
    return fail("run() returned from a task parked for an hour");
  } catch (const Timeout&) {
    std::printf("run() timed out\n");
  }
  TaskHandle<void> pending = loop.submit(park);  // still parked when the process ends
  {
    // It fails once nobody holds its handle: the failure goes to the error handler.
    TaskHandle<void> dropped = loop.submit([]() -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor, 10ms);
      co_await timer.async_wait(asio::use_awaitable);
      throw std::runtime_error("a failure whose handle was dropped");
    });
  }
  if (!eventually([&] { return loop.unhandled_errors() >= 1; }, 5s)) {
    return fail("the dropped task's failure never reached the error handler");
  }
  // The parked task unwinds at once: far inside the destructor's stop budget (5 s + 5 s).
  exit_begins(1s);
  return 0;
}

// ---- 2. Static loops ----

int static_loops() {
  static BackgroundLoop function_local({.name = "lb-local"});
  function_local.start();
  g_static_loop.start();
  static TaskHandle<void> local_pending = function_local.submit(park);
  static TaskHandle<void> namespace_pending = g_static_loop.submit(park);
  try {
    run(function_local, park, 20ms);  // an error made before the exit (it builds an error_code)
  } catch (const Timeout&) {
  }
  exit_begins(1s);
  return 0;
}

// ---- 3. A detached thread using the default loop while main returns ----

std::atomic<int> g_runs_made{0};

int detached_thread_on_the_default_loop() {
  std::thread([] {
    for (;;) {
      try {
        (void)run(default_loop(), [] { return 1; }, 5s);
      } catch (const LoopStopped&) {
        // The exit-time stop came first (TaskAbandoned included): what exit-time code gets.
      } catch (const TaskCancelled& e) {
        if (e.cause() != CancelCause::stop) {
          std::printf("FAILED: run() at exit was cancelled by %s\n", to_string(e.cause()));
          std::_Exit(1);
        }
      } catch (const std::exception& e) {
        std::printf("FAILED: run() at exit threw %s: %s\n", type_name(typeid(e)).c_str(), e.what());
        std::_Exit(1);
      }
      g_runs_made.fetch_add(1);
    }
  }).detach();
  // Under way when main returns: the exit-time stop meets run() calls at every step.
  if (!eventually([] { return g_runs_made.load() >= 20; }, 10s)) return fail("the thread's run() calls stalled");
  exit_begins(2s);
  return 0;
}

// ---- 4, 5, 6. std::exit from a task and from a worker, quick_exit ----

// The calling thread waits here while another one ends the process.
int wait_for_the_exit(TaskHandle<void>& ends_the_process) {
  (void)ends_the_process.wait_for(30s);
  std::printf("FAILED: the process did not end within 30 s\n");
  std::fflush(stdout);
  std::_Exit(1);  // not exit(): a second exit() while the first runs is undefined
}

int exit_from_a_task() {
  static BackgroundLoop exits({.name = "lb-exits"});  // destroyed by the exit its thread runs
  exits.start();
  TaskHandle<void> pending = default_loop().submit(park);
  TaskHandle<void> task = exits.submit([] {
    exit_begins(1s);
    std::exit(3);
  });
  return wait_for_the_exit(task);
}

int exit_from_a_worker() {
  static BackgroundLoop other({.name = "lb-other"});  // destroyed on the worker thread
  other.start();
  TaskHandle<void> pending = other.submit(park);
  TaskHandle<void> task = default_loop().submit([]() -> asio::awaitable<void> {
    auto worker = to_thread([] {
      exit_begins(1s);
      std::exit(4);
    });
    co_await std::move(worker);
  });
  return wait_for_the_exit(task);
}

int quick_exit_with_a_running_loop() {
  static BackgroundLoop running({.name = "lb-running"});
  running.start();
  TaskHandle<void> pending = running.submit(park);
  TaskHandle<void> pending_on_default = default_loop().submit(park);
  std::quick_exit(5);
}

// ---- 7. A fork() child ----

// What "at once" means here: no wait for a thread, with room for a loaded sanitizer build.
constexpr std::int64_t kAtOnceMs = 1000;

// In the child, `call` must throw LoopStopped at once.
bool refused_at_once(const char* what, const std::function<void()>& call) {
  const std::int64_t began = now_ms();
  std::string outcome = "returned";
  try {
    call();
  } catch (const LoopStopped&) {
    outcome = "LoopStopped";
  } catch (const std::exception& e) {
    outcome = type_name(typeid(e));
  }
  const std::int64_t took = now_ms() - began;
  const bool ok = outcome == "LoopStopped" && took < kAtOnceMs;
  std::printf("fork child: %s: %s in %lld ms%s\n", what, outcome.c_str(), static_cast<long long>(took),
              ok ? "" : " (FAILED: LoopStopped at once expected)");
  return ok;
}

int in_the_fork_child(std::unique_ptr<BackgroundLoop>& loop, TaskHandle<void>& pending,
                      TaskHandle<void>& pending_on_default) {
  bool ok = refused_at_once("get() of a pending task", [&] { pending.get(); });
  ok &= refused_at_once("get() of a task pending on the default loop", [&] { pending_on_default.get(); });
  ok &= refused_at_once("run()", [&] { (void)run(*loop, [] { return 1; }, 5s); });
  const std::int64_t began = now_ms();
  (void)loop->stop();
  loop.reset();
  const std::int64_t took = now_ms() - began;
  std::printf("fork child: stop() and the destructor took %lld ms%s\n", static_cast<long long>(took),
              took < kAtOnceMs ? "" : " (FAILED: they waited for a thread the child does not have)");
  ok &= took < kAtOnceMs;
  exit_begins(1s);  // the default loop's exit hook must not wait for it either
  g_fork_child_status.store(ok ? 0 : 1);
  return ok ? 0 : 1;
}

int forked_child_of_a_running_loop() {
  auto loop = std::make_unique<BackgroundLoop>(LoopOptions{.name = "lb-forked"});
  loop->start();
  TaskHandle<void> pending = loop->submit(park);
  TaskHandle<void> pending_on_default = default_loop().submit(park);
  // Fork once the loop threads are idle: GCC 12's ASan allocator takes no lock around
  // fork(), so a child forked while another thread held it deadlocks in its first malloc
  // (seen 1 run in 12). glibc's malloc is safe there: the sanitizer's limit, not loopbridge's.
  (void)run(*loop, [] { return 0; }, 5s);
  (void)run(default_loop(), [] { return 0; }, 5s);
  std::this_thread::sleep_for(50ms);
  const std::int64_t forked_at = now_ms();
  const pid_t child = ::fork();
  if (child < 0) return fail("fork() failed");
  if (child == 0) std::exit(in_the_fork_child(loop, pending, pending_on_default));

  int status = 0;
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (now_ms() - forked_at > 10'000) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return fail("the fork child did not end within 10 s");
    }
    std::this_thread::sleep_for(5ms);
  }
  const long long took = now_ms() - forked_at;
  if (WIFSIGNALED(status)) {
    std::printf("fork child: killed by signal %d (%s) after %lld ms\n", WTERMSIG(status),
                strsignal(WTERMSIG(status)), took);
  } else {
    std::printf("fork child: ended with status %d after %lld ms\n", WEXITSTATUS(status), took);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail("the fork child failed");

  // The parent's loops are whole.
  if (!loop->stop().joined) return fail("the parent's stop() did not join its loop thread");
  if (pending.wait_for(1s) != std::future_status::ready) return fail("the parent's stop() left a handle unsettled");
  std::printf("fork parent: its own loop stopped normally\n");
  exit_begins(1s);
  return 0;
}

// ---- 8. The re-entrancy matrix's exit-time contexts ----

constexpr auto kCallBound = 10s;

// The call under way, for the watchdog: its name and when it began.
std::atomic<const char*> g_context{nullptr};
std::atomic<const char*> g_call{nullptr};
std::atomic<std::int64_t> g_call_began_ms{0};

// A call that hangs never returns to say so: this thread says it, and ends the process.
void start_watchdog() {
  std::thread([] {
    for (;;) {
      std::this_thread::sleep_for(100ms);
      const char* call = g_call.load();
      const std::int64_t bound = std::chrono::milliseconds(kCallBound + 5s).count();
      if (call != nullptr && now_ms() - g_call_began_ms.load() > bound) {
        std::printf("%s|%s|hang (still running after %lld ms)\n", g_context.load(), call,
                    static_cast<long long>(bound));
        std::fflush(stdout);
        std::_Exit(1);
      }
    }
  }).detach();
}

struct Unsettled : std::runtime_error {
  Unsettled() : std::runtime_error("a handle did not settle within the call's bound") {}
};

void wait_settled(const TaskHandle<void>& handle) {
  if (handle.wait_for(kCallBound) != std::future_status::ready) throw Unsettled();
}

/// Waits for what the call made; the call's outcome is the task's.
template <class T>
void settle(TaskHandle<T> handle) {
  if (handle.wait_for(kCallBound) != std::future_status::ready) throw Unsettled();
  (void)handle.get();
}

// What the exit-time calls act on, made by main. Never destroyed: the calls stop or destroy
// what it points to, and a detached thread may still use it while the process ends.
struct ExitWorld {
  BackgroundLoop* doomed = nullptr;  // running, with a pending task: a call destroys it
  LoopPool* pool = nullptr;          // running, with a pending task
  TaskHandle<void> static_pending;
  TaskHandle<void> default_pending;
  TaskHandle<void> doomed_pending;
  TaskHandle<void> pool_pending;
};
ExitWorld* g_world = nullptr;

void make_exit_world() {
  auto* world = new ExitWorld;
  g_static_loop.start();
  world->static_pending = g_static_loop.submit(park);
  world->default_pending = default_loop().submit(park);
  world->doomed = new BackgroundLoop({.name = "lb-doomed"});
  world->doomed->start();
  world->doomed_pending = world->doomed->submit(park);
  world->pool = new LoopPool({.loops = 2, .loop = {.name = "lb-pool"}});
  world->pool->start();
  world->pool_pending = world->pool->submit(park);
  g_world = world;
}

struct ExitCall {
  const char* name;
  std::function<void()> make;
};

asio::awaitable<void> no_op() { co_return; }
constexpr auto one = [] { return 1; };

// Every lifecycle and submission call, on the loops that exist at exit. Submissions come
// before the stops, so that both a running and a stopped loop get asked.
std::vector<ExitCall> exit_calls() {
  ExitWorld* w = g_world;
  BackgroundLoop& s = g_static_loop;
  return {
      {"default_loop()", [] { (void)default_loop(); }},
      {"start() of the static loop", [&] { s.start(); }},
      {"run_here() of the static loop", [&] { (void)s.run_here(); }},
      {"on_start() of the static loop", [&] { s.on_start(no_op); }},
      {"on_stop() of the static loop", [&] { s.on_stop(no_op); }},
      {"submit() to the static loop", [&] { settle(s.submit(one)); }},
      {"post() to the static loop", [&] { s.post([] {}); }},
      {"cancel() of a task pending on the static loop", [w] {
         (void)w->static_pending.cancel();
         wait_settled(w->static_pending);
       }},
      {"cancel_all() on the static loop", [&] { settle(s.cancel_all()); }},
      {"run() on the static loop", [&] { (void)run(s, one, kCallBound); }},
      {"submit() to the default loop", [] { settle(default_loop().submit(one)); }},
      {"post() to the default loop", [] { default_loop().post([] {}); }},
      {"cancel() of a task pending on the default loop", [w] {
         (void)w->default_pending.cancel();
         wait_settled(w->default_pending);
       }},
      {"cancel_all() on the default loop", [] { settle(default_loop().cancel_all()); }},
      {"run() on the default loop", [] { (void)run(default_loop(), one, kCallBound); }},
      {"LoopPool::start()", [w] { w->pool->start(); }},
      {"submit() to the pool", [w] { settle(w->pool->submit(one)); }},
      {"post() to the pool", [w] { w->pool->post([] {}); }},
      {"run() on a loop of the pool", [w] { (void)run(w->pool->next(), one, kCallBound); }},
      {"LoopPool::stop()", [w] { (void)w->pool->stop(); }},
      {"start() of a new loop", [] {
         BackgroundLoop fresh({.name = "lb-exit-new"});
         fresh.start();
         settle(fresh.submit(one));
       }},
      {"~BackgroundLoop() of a running loop", [w] {
         delete std::exchange(w->doomed, nullptr);
         if (!w->doomed_pending.ready()) throw Unsettled();
       }},
      {"request_stop() of the static loop", [&] { s.request_stop(); }},
      {"stop() of the static loop", [&] { (void)s.stop(); }},
      {"reset_default_loop()", [] { (void)reset_default_loop(); }},
      {"set_default_loop_factory()", [] {
         set_default_loop_factory([] { return std::make_unique<BackgroundLoop>(LoopOptions{.name = "lb-exit-made"}); });
       }},
      {"run() on the default loop after reset_default_loop()", [] { (void)run(default_loop(), one, kCallBound); }},
      {"every handle settled", [w] {
         for (auto* handle : {&w->static_pending, &w->default_pending, &w->doomed_pending, &w->pool_pending}) {
           wait_settled(*handle);
         }
       }},
  };
}

/// "ok", the name of the loopbridge error the call threw, or what went wrong.
std::string outcome_of(const std::function<void()>& call) {
  try {
    call();
    return "ok";
  } catch (const Unsettled& e) {
    return std::string("hang: ") + e.what();
  } catch (const Error& e) {
    // Each case has its own type; the base alone tells the caller nothing.
    if (typeid(e) == typeid(Error)) return std::string("unexpected untyped Error: ") + e.what();
    return type_name(typeid(e));
  } catch (const std::exception& e) {
    return "unexpected " + type_name(typeid(e)) + ": " + e.what();
  } catch (...) {
    return "unexpected exception of an unknown type";
  }
}

/// Makes every call, one line each: `<context>|<call>|<outcome>`; a call that returned past
/// its bound is a hang too.
void make_exit_calls(const char* context) {
  g_context.store(context);
  const std::int64_t bound = std::chrono::milliseconds(kCallBound).count();
  int made = 0;
  std::int64_t longest = 0;
  for (const ExitCall& call : exit_calls()) {
    const std::int64_t began = now_ms();
    g_call_began_ms.store(began);
    g_call.store(call.name);
    std::string outcome = outcome_of(call.make);
    g_call.store(nullptr);
    const std::int64_t took = now_ms() - began;
    if (took > bound) outcome = "hang: returned after " + std::to_string(took) + " ms (" + outcome + ")";
    std::printf("%s|%s|%s\n", context, call.name, outcome.c_str());
    longest = std::max(longest, took);
    ++made;
  }
  std::printf("%s|all calls|%d made, the longest in %lld ms (bound %lld ms)\n", context, made,
              static_cast<long long>(longest), static_cast<long long>(bound));
}

// Generous: each call has its own bound (the watchdog's); this one catches a stall between them.
constexpr auto kExitCallsBound = 20s;

int calls_from_a_static_destructor() {
  start_watchdog();
  make_exit_world();
  struct MakesExitCallsWhenDestroyed {
    ~MakesExitCallsWhenDestroyed() { make_exit_calls("static destructor"); }
  };
  // Made after the first default_loop(): destroyed before its exit hook runs, while every
  // loop still runs.
  static MakesExitCallsWhenDestroyed calls;
  exit_begins(kExitCallsBound);
  return 0;
}

int calls_from_an_atexit_handler() {
  start_watchdog();
  // Registered before the first default_loop(): runs after its exit hook stopped it, while
  // the pool, the doomed loop and g_static_loop still run.
  std::atexit([] { make_exit_calls("atexit handler"); });
  make_exit_world();
  exit_begins(kExitCallsBound);
  return 0;
}

std::atomic<bool> g_exit_calls_done{false};

int calls_from_a_detached_thread() {
  start_watchdog();
  // Registered before the first default_loop(), so it runs after the default loop's exit
  // hook and before g_static_loop's destructor: the thread's calls race the hook, and the
  // process does not end under them.
  std::atexit([] {
    if (!eventually([] { return g_exit_calls_done.load(); }, 60s)) {
      std::printf("detached thread at exit|all calls|hang: not done within 60 s\n");
      std::fflush(stdout);
      std::_Exit(1);
    }
  });
  make_exit_world();
  std::thread([] {
    while (g_exit_began_ms.load() == 0) std::this_thread::yield();
    make_exit_calls("detached thread at exit");
    g_exit_calls_done.store(true);
  }).detach();
  exit_begins(kExitCallsBound);
  return 0;
}

struct Scenario {
  const char* name;
  int (*run)();
};

constexpr Scenario kScenarios[] = {
    {"default-loop-pending-after-errors", default_loop_with_pending_work_after_errors},
    {"static-loops", static_loops},
    {"detached-thread-on-default-loop", detached_thread_on_the_default_loop},
    {"exit-from-task", exit_from_a_task},
    {"exit-from-worker", exit_from_a_worker},
    {"quick-exit", quick_exit_with_a_running_loop},
    {"fork-child", forked_child_of_a_running_loop},
    {"calls-from-static-destructor", calls_from_a_static_destructor},
    {"calls-from-atexit-handler", calls_from_an_atexit_handler},
    {"calls-from-detached-thread", calls_from_a_detached_thread},
};

}  // namespace

int main(int argc, char** argv) {
  // Line by line, so that a process ended by _Exit or a crash has said all it printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  for (const Scenario& scenario : kScenarios) {
    if (argc == 2 && std::strcmp(argv[1], scenario.name) == 0) return scenario.run();
  }
  std::fprintf(stderr, "usage: %s SCENARIO, one of:\n", argv[0]);
  for (const Scenario& scenario : kScenarios) std::fprintf(stderr, "  %s\n", scenario.name);
  return 2;
}
