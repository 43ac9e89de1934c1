// Allocation failure on the submission path, injected by alloc_injection.hpp (this
// executable replaces operator new and aligned_alloc). Every submission form is tried with
// n = 0, 1, 2, ... until it gets through without reaching its n-th allocation, so each
// allocation on its path fails once.
//
// What must hold each time: std::bad_alloc reaches the caller (or the call succeeds as if
// nothing happened), nothing the call was given leaks, the loop still runs work, and its
// counts reconcile. Each attempt runs in a child process, so that one that ends in
// std::terminate is reported as such instead of taking the test run down.

#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "alloc_injection.hpp"
#include "figures.hpp"
#include "support/deadline.hpp"

#include <boost/asio/this_coro.hpp>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

/// Counts its live copies: what a submission was given must be gone once it failed.
struct Witness {
  static inline std::atomic<int> live{0};
  Witness() { ++live; }
  Witness(const Witness&) { ++live; }
  Witness(Witness&&) noexcept { ++live; }
  ~Witness() { --live; }
};

int g_report_fd = -1;  // the child's end of the pipe

// A child that dies says where the injected allocation failed, first.
void report_site_and_die(int sig) {
  std::string site = "!" + failure_site();
  [[maybe_unused]] auto written = ::write(g_report_fd, site.data(), site.size());
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

/// One attempt's findings, written by the child, read by the parent.
struct Findings {
  std::string text;
  bool call_threw = false;  // the armed call threw std::bad_alloc
  void fail(const std::string& what) { text += what + "; "; }
};

/// A submission form. `attempt` makes the call with the failure armed at `nth` and returns
/// whether the call reached that allocation; what it submits sets `ran` when it runs.
struct Form {
  const char* name;
  std::function<bool(BackgroundLoop&, long nth, std::atomic<bool>& ran, Findings&)> attempt;
  /// Whether a call that threw may still have submitted its work (run() waits after it
  /// submitted, and that wait may fail too).
  bool may_run_after_throwing = false;
};

// Calls `call` armed; true if the injected failure fired. std::bad_alloc must be what
// comes out of a call whose allocation failed; a call that succeeded must not have fired.
template <class Call>
bool armed(long nth, Findings& findings, Call&& call) {
  bool threw = false;
  bool fired = false;
  {
    FailAllocation failure(nth);
    try {
      call();
    } catch (const std::bad_alloc&) {
      threw = true;
    } catch (const std::exception& e) {
      findings.fail(std::string("threw ") + typeid(e).name() + " (" + e.what() + ") instead of std::bad_alloc");
    }
    fired = FailAllocation::fired();
  }
  if (threw && !fired) findings.fail("std::bad_alloc without an injected failure");
  findings.call_threw = threw;
  return fired;
}

template <class T>
void expect_value(TaskHandle<T>& h, T value, Findings& f) {
  if (!h.valid()) return;
  if (h.wait_for(kDeadline) != std::future_status::ready) {
    f.fail("the handle never settled");
  } else if (h.get() != value) {
    f.fail("the handle gave a wrong value");
  }
}

// Calls from a host thread.
const std::vector<Form>& host_forms() {
  static const std::vector<Form> all = {
      {"submit(callable)",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         TaskHandle<int> h;
         bool fired = armed(nth, f, [&] { h = loop.submit([w = Witness(), &ran] { return ran = true, 1; }); });
         expect_value(h, 1, f);
         return fired;
       }},
      {"submit(coroutine)",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         TaskHandle<int> h;
         bool fired = armed(nth, f, [&] {
           h = loop.submit([w = Witness(), &ran]() -> asio::awaitable<int> { co_return ran = true, 1; });
         });
         expect_value(h, 1, f);
         return fired;
       }},
#if LOOPBRIDGE_HAS_STOP_TOKEN
      {"submit(callable, stop_token)",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         std::stop_source source;
         TaskHandle<int> h;
         bool fired =
             armed(nth, f, [&] { h = loop.submit([w = Witness(), &ran] { return ran = true, 1; }, source.get_token()); });
         expect_value(h, 1, f);
         return fired;
       }},
#endif
      {"post(callable)",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         return armed(nth, f, [&] { loop.post([w = Witness(), &ran] { ran = true; }); });
       }},
      {"post(coroutine)",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         return armed(nth, f, [&] {
           loop.post([w = Witness(), &ran]() -> asio::awaitable<void> {
             ran = true;
             co_return;
           });
         });
       }},
      {"cancel_all()",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>&, Findings& f) {
         TaskHandle<std::size_t> h;
         bool fired = armed(nth, f, [&] { h = loop.cancel_all(); });
         expect_value(h, std::size_t{0}, f);
         return fired;
       }},
      {"run()",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         return armed(nth, f, [&] {
           if (run(loop, [w = Witness(), &ran] { return ran = true, 1; }, kDeadline) != 1) f.fail("run gave a wrong value");
         });
       },
       true},
  };
  return all;
}

// Awaits inside a task, armed on the loop thread.
const std::vector<Form>& loop_forms() {
  static const std::vector<Form> all = {
      {"to_thread() in a task",
       [](BackgroundLoop& loop, long nth, std::atomic<bool>& ran, Findings& f) {
         // Armed on the loop thread, inside the task: the offload's own allocations fail.
         auto h = loop.submit([nth, &ran]() -> asio::awaitable<bool> {
           ran = true;
           std::optional<FailAllocation> failure(std::in_place, nth);
           auto op = to_thread([w = Witness()] { return 1; });
           int value = co_await std::move(op);
           bool fired = FailAllocation::fired();
           failure.reset();
           co_return fired || value != 1;
         });
         if (h.wait_for(kDeadline) != std::future_status::ready) {
           f.fail("the task never settled");
           return false;
         }
         try {
           return h.get();
         } catch (const std::bad_alloc&) {
           return true;
         } catch (const std::exception& e) {
           f.fail(std::string("the task failed with ") + typeid(e).name() + " instead of std::bad_alloc");
           return true;
         }
       }},
  };
  return all;
}

/// Runs one attempt in this (child) process; returns what went wrong, empty if nothing.
std::string attempt_in_child(const Form& form, long nth, bool fresh_thread, bool& reached) {
  Findings findings;
  LoopOptions options{.name = "lb-alloc"};
  options.error_handler = [](std::exception_ptr, std::string_view) {};
  {
    BackgroundLoop loop(options);
    loop.start();
    std::uint64_t submissions = 0;
    std::atomic<bool> ran{false};
    auto one = [&] { reached = form.attempt(loop, nth, ran, findings); };
    if (fresh_thread) {
      std::thread(one).join();  // the thread's first submission: its host state is made here
    } else {
      auto warm = loop.submit([] { return 0; });  // this thread's host state exists already
      ++submissions;
      if (warm.wait_for(kDeadline) != std::future_status::ready) findings.fail("warm-up task never settled");
      one();
    }
    // Commands from one thread run in order: once this one has run, so has the attempt's.
    auto after = loop.submit([] { return 2; });
    if (after.wait_for(kDeadline) != std::future_status::ready || after.get() != 2) {
      findings.fail("the loop no longer runs work");
    }
    ++submissions;
    if (ran) ++submissions;
    if (ran && findings.call_threw && !form.may_run_after_throwing) {
      findings.fail("the call failed, yet what it submitted ran");
    }
    ShutdownReport report = loop.stop();
    if (report.submitted != report.completed + report.failed + report.cancelled + report.abandoned + report.rejected) {
      findings.fail("counts do not reconcile: " + report.summary());
    }
    if (report.submitted != submissions) {
      findings.fail("submitted " + std::to_string(report.submitted) + ", expected " + std::to_string(submissions));
    }
  }
  if (Witness::live != 0) findings.fail(std::to_string(Witness::live.load()) + " callable(s) leaked");
#if defined(__SANITIZE_ADDRESS__)
  if (__lsan_do_recoverable_leak_check() != 0) findings.fail("LeakSanitizer found a leak");
#endif
  return findings.text;
}

struct Verdict {
  bool reached = false;
  std::string problem;
};

Verdict attempt(const Form& form, long nth, bool fresh_thread) {
  // LOOPBRIDGE_ALLOC_REPLAY="FORM|N|fresh" runs that one attempt in this process (for a
  // debugger); the others are skipped.
  if (const char* replay = std::getenv("LOOPBRIDGE_ALLOC_REPLAY")) {
    const std::string spec = replay;
    const std::string prefix = std::string(form.name) + "|";
    const bool fresh_wanted = spec.size() >= 6 && spec.compare(spec.size() - 6, 6, "|fresh") == 0;
    if (spec.rfind(prefix, 0) != 0 || fresh_wanted != fresh_thread) return {};
    const long wanted_nth = std::strtol(spec.c_str() + prefix.size(), nullptr, 10);
    if (nth != wanted_nth) return {.reached = nth < wanted_nth, .problem = {}};
    Verdict verdict;
    verdict.problem = attempt_in_child(form, nth, fresh_thread, verdict.reached);
    return verdict;
  }
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  std::fflush(nullptr);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    ::alarm(30);  // a hang ends as SIGALRM
    // A crash is the parent's to report (without the test framework's fatal-signal
    // report), after the child has said where the injected failure was.
    g_report_fd = pipe_fds[1];
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGALRM}) std::signal(sig, report_site_and_die);
    bool reached = true;
    std::string problem;
    try {
      problem = attempt_in_child(form, nth, fresh_thread, reached);
    } catch (const std::exception& e) {
      problem = std::string("escaped the attempt: ") + typeid(e).name() + " (" + e.what() + ")";
    } catch (...) {
      problem = "a non-standard exception escaped the attempt";
    }
    while (!problem.empty() && (problem.back() == ' ' || problem.back() == ';')) problem.pop_back();
    if (!problem.empty()) problem += failure_site();
    std::string message = std::string(reached ? "R" : "-") + problem;
    [[maybe_unused]] auto written = ::write(pipe_fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  Verdict verdict;
  if (WIFSIGNALED(status)) {
    verdict.reached = true;
    const std::string site = message.rfind('!', 0) == 0 ? message.substr(1) : "";
    verdict.problem = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                      strsignal(WTERMSIG(status)) + (WTERMSIG(status) == SIGABRT ? ": std::terminate?" : "") + ")" +
                      site;
  } else if (message.empty()) {
    verdict.reached = true;
    verdict.problem = "the child exited with status " + std::to_string(WEXITSTATUS(status)) + " before reporting";
  } else {
    verdict.reached = message[0] == 'R';
    verdict.problem = message.substr(1);
  }
  return verdict;
}

std::vector<std::string> try_every_allocation(const std::vector<Form>& forms, std::uint64_t& injected) {
  std::vector<std::string> problems;
  for (const Form& form : forms) {
    for (bool fresh_thread : {true, false}) {
      for (long nth = 0;; ++nth) {
        REQUIRE(nth < 64);  // no path allocates this much
        Verdict verdict = attempt(form, nth, fresh_thread);
        if (!verdict.reached) break;
        ++injected;
        if (!verdict.problem.empty()) {
          problems.push_back(std::string(form.name) + (fresh_thread ? " (first from its thread)" : "") +
                             ", allocation #" + std::to_string(nth) + " fails: " + verdict.problem);
        }
      }
    }
  }
  return problems;
}

std::string lines(const std::vector<std::string>& all) {
  std::string text;
  for (const auto& line : all) text += line + "\n";
  return text;
}

}  // namespace

TEST_CASE("an allocation failure anywhere on the submission path reaches the caller as std::bad_alloc",
          "[reliability][fault][alloc]") {
  std::uint64_t injected = 0;
  auto problems = try_every_allocation(host_forms(), injected);
  INFO(problems.size() << " of " << injected << " injected allocation failures misbehaved:\n" << lines(problems));
  CHECK(problems.empty());
  record_figure("alloc", "host-side failures injected", injected);
  record_figure("alloc", "host-side failures misbehaved", problems.size());
}

TEST_CASE("an allocation failure in a task's own awaits fails that task and nothing else",
          "[reliability][fault][alloc]") {
  std::uint64_t injected = 0;
  auto problems = try_every_allocation(loop_forms(), injected);
  INFO(problems.size() << " of " << injected << " injected allocation failures misbehaved:\n" << lines(problems));
  CHECK(problems.empty());
  record_figure("alloc", "loop-side failures injected", injected);
  record_figure("alloc", "loop-side failures misbehaved", problems.size());
}
