#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/bridge/run.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// The TaskCancelled that `task` settled with (fails the test if it settled otherwise).
template <class T>
TaskCancelled cancellation_of(TaskHandle<T>& task) {
  REQUIRE(task.wait_for(kDeadline) == std::future_status::ready);
  try {
    task.get();
  } catch (const TaskCancelled& e) {
    return e;
  }
  FAIL("the task was not cancelled");
  throw std::logic_error("unreachable");
}

// Checks that `e` carries `cause` as its field and names it in what(), with when it came.
void check_names(const TaskCancelled& e, CancelCause cause, const std::string& when) {
  INFO(e.what());
  CHECK(e.cause() == cause);
  CHECK(std::string(e.what()) == std::string("task cancelled by ") + to_string(cause) + " " + when);
  CHECK(e.code() == errc::task_cancelled);
}

TaskHandle<void> parked(const BackgroundLoop& loop, SubmitOptions options = {}) {
  return loop.submit([] { return sleep_for(std::chrono::hours(1)); }, std::move(options));
}

}  // namespace

TEST_CASE("every cancel cause has its own name", "[loop][cancel][cause]") {
  std::set<std::string> names;
  for (CancelCause cause : {CancelCause::cancel, CancelCause::cancel_all, CancelCause::stop, CancelCause::deadline,
                            CancelCause::stop_token}) {
    names.insert(to_string(cause));
  }
  CHECK(names == std::set<std::string>{"cancel()", "cancel_all()", "the loop's stop", "a deadline", "a stop token"});
}

TEST_CASE("cancel() names itself, before the task started and while it ran", "[loop][cancel][cause]") {
  BackgroundLoop loop({.name = "lb-cause-cancel"});
  loop.start();
  auto running = parked(loop);
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  TaskHandle<void> queued;
  {
    LoopBlocker busy(loop);
    queued = parked(loop);
    CHECK(queued.cancel());
  }
  CHECK(running.cancel());
  check_names(cancellation_of(queued), CancelCause::cancel, "before it started");
  check_names(cancellation_of(running), CancelCause::cancel, "while it ran");
}

TEST_CASE("cancel_all() names itself", "[loop][cancel][cause]") {
  BackgroundLoop loop({.name = "lb-cause-all"});
  loop.start();
  auto running = parked(loop);
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  auto all = loop.cancel_all();
  require_settles(all);
  check_names(cancellation_of(running), CancelCause::cancel_all, "while it ran");
}

TEST_CASE("the loop's stop names itself, for queued, running and dropped tasks", "[loop][cancel][cause][stop]") {
  BackgroundLoop loop({.name = "lb-cause-stop"});
  loop.start();
  auto running = parked(loop);
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  TaskHandle<void> queued;
  std::optional<LoopBlocker> busy(std::in_place, loop);
  queued = parked(loop);
  loop.request_stop();
  busy.reset();
  loop.stop();
  check_names(cancellation_of(queued), CancelCause::stop, "before it started");
  check_names(cancellation_of(running), CancelCause::stop, "while it ran");

  BackgroundLoop dropping({.name = "lb-cause-drop"});
  dropping.start();
  auto dropped = parked(dropping);
  REQUIRE(eventually([&] { return dropping.stats().running == 1; }));
  dropping.stop({.drop_in_flight = true});
  const TaskCancelled e = cancellation_of(dropped);
  CHECK(e.cause() == CancelCause::stop);
  CHECK(std::string(e.what()).find(to_string(CancelCause::stop)) != std::string::npos);
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("a stop token names itself, through submit() and run()", "[loop][cancel][cause]") {
  BackgroundLoop loop({.name = "lb-cause-token"});
  loop.start();
  std::stop_source running_source;
  auto running = parked(loop, {.stop = running_source.get_token()});
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  std::stop_source queued_source;
  TaskHandle<void> queued;
  {
    LoopBlocker busy(loop);
    queued = parked(loop, {.stop = queued_source.get_token()});
    queued_source.request_stop();
  }
  running_source.request_stop();
  check_names(cancellation_of(queued), CancelCause::stop_token, "before it started");
  check_names(cancellation_of(running), CancelCause::stop_token, "while it ran");

  std::stop_source run_source;
  std::thread requester([&] {
    eventually([&] { return loop.stats().running == 1; });
    run_source.request_stop();
  });
  try {
    run(loop, [] { return sleep_for(std::chrono::hours(1)); }, kDeadline, {.stop = run_source.get_token()});
    FAIL("run() returned");
  } catch (const TaskCancelled& e) {
    check_names(e, CancelCause::stop_token, "while it ran");
  }
  requester.join();
}
#endif

TEST_CASE("run()'s deadline names itself: its cancel settles the task, and run() throws Timeout",
          "[loop][cancel][cause][run]") {
  BackgroundLoop loop({.name = "lb-cause-deadline"});
  loop.start();
  // What run() does at its deadline, seen on the task's own handle.
  auto running = parked(loop);
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  TaskHandle<void> queued;
  {
    LoopBlocker busy(loop);
    queued = parked(loop);
    CHECK(detail::cancel_at_deadline(detail::HandleAccess::state(queued)));
  }
  CHECK(detail::cancel_at_deadline(detail::HandleAccess::state(running)));
  check_names(cancellation_of(queued), CancelCause::deadline, "before it started");
  check_names(cancellation_of(running), CancelCause::deadline, "while it ran");

  try {
    run(loop, [] { return sleep_for(std::chrono::hours(1)); }, std::chrono::milliseconds(20));
    FAIL("run() returned");
  } catch (const Timeout& e) {
    CHECK(std::string(e.what()).find("deadline") != std::string::npos);
  }
}
