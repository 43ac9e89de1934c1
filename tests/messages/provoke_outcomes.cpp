// The errors loopbridge settles handles with or reports, and its other texts, each
// provoked for real.

#include "catalogue.hpp"

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include "reporting.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

namespace asio = boost::asio;

namespace loopbridge::test {
namespace {

TaskHandle<void> sleeping(const BackgroundLoop& loop, SubmitOptions options = {}) {
  return loop.submit([] { return sleep_for(std::chrono::hours(1)); }, std::move(options));
}

// Records the error `task` settles with.
template <class T>
void settled(Catalogue& catalogue, const char* how, TaskHandle<T>& task) {
  if (task.wait_for(kDeadline) != std::future_status::ready) {
    catalogue.miss(how);
    return;
  }
  catalogue.thrown(how, [&] { (void)task.get(); });
}

}  // namespace

void provoke_cancellations(Catalogue& catalogue) {
  BackgroundLoop loop({.name = "lb-msg-cancel"});
  loop.start();
  auto running = sleeping(loop);
#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
  std::stop_source running_source;
  auto running_token = sleeping(loop, {.stop = running_source.get_token()});
  REQUIRE(eventually([&] { return loop.stats().running == 2; }));
  TaskHandle<void> queued_token;
  std::stop_source queued_source;
#else
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
#endif
  TaskHandle<void> queued;
  {
    LoopBlocker busy(loop);
    queued = sleeping(loop);
    (void)queued.cancel();
#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
    queued_token = sleeping(loop, {.stop = queued_source.get_token()});
    queued_source.request_stop();
#endif
  }
  (void)running.cancel();
  settled(catalogue, "cancel() before the task started", queued);
  settled(catalogue, "cancel() while it ran", running);
#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
  running_source.request_stop();
  settled(catalogue, "a stop token before the task started", queued_token);
  settled(catalogue, "a stop token while it ran", running_token);
#endif

  auto by_all = sleeping(loop);
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  auto all = loop.cancel_all();
  (void)all.wait_for(kDeadline);
  settled(catalogue, "cancel_all()", by_all);

  catalogue.thrown("run() past its deadline",
                   [&] { run(loop, [] { return sleep_for(std::chrono::hours(1)); }, std::chrono::milliseconds(1)); });

  auto by_stop = sleeping(loop);
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  TaskHandle<void> queued_at_stop;
  {
    LoopBlocker busy(loop);
    queued_at_stop = sleeping(loop);
    loop.request_stop();
  }
  loop.stop();
  settled(catalogue, "the stop, before the task started", queued_at_stop);
  settled(catalogue, "the stop, while it ran", by_stop);

  BackgroundLoop dropping({.name = "lb-msg-drop"});
  dropping.start();
  auto dropped = sleeping(dropping);
  REQUIRE(eventually([&] { return dropping.stats().running == 1; }));
  dropping.stop({.drop_in_flight = true});
  settled(catalogue, "a stop that drops what is in flight", dropped);
}

void provoke_stop_errors(Catalogue& catalogue) {
  LoopOptions options{.name = "lb-msg-stop"};
  options.error_handler = catalogue.handler("a stop");
  BackgroundLoop loop(options);
  loop.on_stop([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  loop.start();
  LoopHandle handle = loop.handle();
  const ShutdownReport report = loop.stop({.hook_timeout = std::chrono::milliseconds(10)});
  for (const auto& error : report.hook_errors) catalogue.held("an on_stop hook past its deadline", error);
  auto refused = handle.submit([] { return 1; });
  settled(catalogue, "submit after stop", refused);
  catalogue.thrown("post after stop", [&] { handle.post([] {}); });

  BackgroundLoop ignoring_loop({.name = "lb-msg-abandon"});
  ignoring_loop.start();
  auto ignoring = ignoring_loop.submit([]() -> asio::awaitable<void> {
    try {
      co_await sleep_for(std::chrono::hours(1));
    } catch (const boost::system::system_error&) {
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await sleep_for(std::chrono::hours(1));
  });
  REQUIRE(eventually([&] { return ignoring_loop.stats().running == 1; }));
  ignoring_loop.stop({.cancel_timeout = std::chrono::milliseconds(20)});
  settled(catalogue, "a task that ignores its cancel at stop", ignoring);
}

void provoke_bridge_errors(Catalogue& catalogue) {
  BackgroundLoop loop({.name = "lb-msg-bridge"});
  loop.start();
  auto host_busy = loop.submit([]() -> asio::awaitable<int> {
    auto op = call_host([] { return 1; });
    co_return co_await std::move(op);
  });
  REQUIRE(eventually([&] { return host_busy.ready(); }));
  catalogue.thrown("call_host() while its host polls", [&] { (void)host_busy.get(); });

  auto from_loop = loop.submit([&loop] {
    return loop.submit([]() -> asio::awaitable<int> {
      auto op = call_host([] { return 1; });
      co_return co_await std::move(op);
    });
  });
  (void)from_loop.wait_for(kDeadline);
  auto inner = from_loop.get();
  settled(catalogue, "call_host() from a task submitted on a loop thread", inner);
  loop.stop();

  LoopOptions options{.name = "lb-msg-unwind"};
  options.error_handler = catalogue.handler("run() waiting for a task its deadline cancelled");
  BackgroundLoop slow(options);
  slow.start();
  Gate release;
  catalogue.thrown("run() past its unwind_timeout", [&] {
    run(slow, [&release] { (void)release.wait(); }, std::chrono::milliseconds(5),
        {.unwind_timeout = std::chrono::milliseconds(50), .unwind_warning = std::chrono::milliseconds(1)});
  });
  release.open();
  slow.stop();
}

void provoke_reported_errors(Catalogue& catalogue) {
  LoopOptions options{.name = "lb-msg-report"};
  options.error_handler = catalogue.handler("the error handler");
  const std::size_t reported_before = catalogue.reports();
  BackgroundLoop loop(options);
  loop.start();
  loop.post([] { throw std::runtime_error("posted failure"); });
  {
    auto dropped = loop.submit([]() -> int { throw std::runtime_error("unread failure"); });
    (void)dropped.wait_for(kDeadline);
  }
  auto unwinding = loop.submit([]() -> asio::awaitable<void> {
    try {
      co_await sleep_for(std::chrono::hours(1));
    } catch (...) {
    }
    throw std::runtime_error("failure while cancelled");
  });
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  (void)unwinding.cancel();
  (void)unwinding.wait_for(kDeadline);
  if (!eventually([&] { return catalogue.reports() >= reported_before + 3; })) catalogue.miss("three reported errors");
  loop.stop();
}

void provoke_texts(Catalogue& catalogue) {
  for (int code = static_cast<int>(errc::task_cancelled); code <= static_cast<int>(errc::backend_unavailable);
       ++code) {
    catalogue.text("code", make_error_code(static_cast<errc>(code)).message(), "an error code");
  }
  for (CancelCause cause : {CancelCause::cancel, CancelCause::cancel_all, CancelCause::stop, CancelCause::deadline,
                            CancelCause::stop_token}) {
    catalogue.text("cause", to_string(cause), "a cancel cause");
  }
  const StallReport stall{.loop = "app", .task = "render", .where = source_location::current(),
                          .duration = std::chrono::milliseconds(120)};
  catalogue.text("line", detail::stall_line(stall), "a stall on stderr");
}

}  // namespace loopbridge::test
