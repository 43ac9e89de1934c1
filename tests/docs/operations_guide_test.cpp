// The code of docs/operations.md, run. Each `//! [name]` region is shown in the guide as it
// is here (tests/docs/check_doc_snippets.cpp checks that).

#include <loopbridge/loopbridge.hpp>
#include <loopbridge/testing/catch2.hpp>

#include "support/deadline.hpp"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A coroutine that blocks its loop thread after its first suspension, as a synchronous
/// database driver called from a coroutine would.
boost::asio::awaitable<std::string> fetch_user() {
  co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
  std::this_thread::sleep_for(80ms);  // the blocking call the stall report is about
  co_return "ada";
}

/// A request handler a loop runs for the host.
int handle_request() { return 200; }

/// The answer to a request the service has no room for.
int http_503() { return 503; }

/// Offers one request to `loop`: 202 if it was queued, or what the backpressure block returns.
int accept_request(const loopbridge::BackgroundLoop& loop) {
  //! [shed-load]
  try {
    auto reply = loop.submit(handle_request, loopbridge::SubmitOptions{.when_full = loopbridge::QueueFullPolicy::fail});
  } catch (const loopbridge::QueueFull&) {
    return http_503();  // shed load; nothing was queued
  }
  //! [shed-load]
  return 202;
}

/// A pool job that waits for a day, so that cancel_all() finds it running.
boost::asio::awaitable<int> job() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 24h);
  co_await timer.async_wait(boost::asio::use_awaitable);
  co_return 1;
}

}  // namespace

LOOPBRIDGE_TEST_CASE("operations guide: stats reconcile after the loop stops", "[docs][stats]") {
  loopbridge::BackgroundLoop loop({.name = "stats"});
  loop.start();
  REQUIRE(loop.submit([] { return 1; }).get() == 1);
  loop.stop();

  //! [stats]
  loopbridge::LoopStats s = loop.stats();     // any thread, any time, also after stop
  std::cout << s.in_flight << " in flight, p99 lag "
            << std::chrono::duration_cast<std::chrono::microseconds>(s.lag_p99).count() << " us\n";
  //! [stats]
  CHECK(s.submitted == 1);
  CHECK(s.submitted == s.completed + s.failed + s.cancelled + s.rejected + s.abandoned + s.in_flight);
}

LOOPBRIDGE_TEST_CASE("operations guide: a blocking call after a co_await is reported as a stall of its task", "[docs][stall]") {
  //! [stall]
  loopbridge::BackgroundLoop loop({
      .name = "io",
      .stall_threshold = std::chrono::milliseconds(50),
      .stall_handler = [](const loopbridge::StallReport& r) {
        std::cerr << r.task << " blocked loop " << r.loop << " for " << r.duration / std::chrono::milliseconds(1)
                  << " ms (" << r.where.file_name() << ":" << r.where.line() << ")\n";
      },
  });
  loop.start();
  auto h = loop.submit(fetch_user, loopbridge::SubmitOptions{.name = "fetch-user"});
  //! [stall]
  REQUIRE(h.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
  CHECK(h.get() == "ada");
  CHECK(loopbridge::test::eventually([&] { return loop.stats().stalls >= 1; }));  // a preempted stretch may count too
  loop.stop();
}

LOOPBRIDGE_TEST_CASE("operations guide: a full queue sheds load with QueueFull", "[docs][backpressure]") {
  //! [backpressure]
  loopbridge::BackgroundLoop loop({
      .name = "ingest",
      .queue_capacity = 1024,
      .when_full = loopbridge::QueueFullPolicy::wait,      // or ::fail (the default)
      .full_wait = std::chrono::milliseconds(200),
  });
  //! [backpressure]
  loop.start();
  loopbridge::test::LoopBlocker blocker(loop);  // the queue fills up behind it
  std::vector<loopbridge::TaskHandle<int>> queued;
  for (int i = 0; i < 1024; ++i) queued.push_back(loop.submit(handle_request));
  CHECK(accept_request(loop) == 503);
  CHECK(loop.stats().rejected_full == 1);

  blocker.release();
  for (const auto& request : queued) REQUIRE(request.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
  CHECK(accept_request(loop) == 202);
  loop.stop();
}

LOOPBRIDGE_TEST_CASE("operations guide: the in-flight list names each task and its submit() call", "[docs][in_flight]") {
  loopbridge::BackgroundLoop loop({.name = "server"});
  loop.start();
  auto user = loop.submit(job, loopbridge::SubmitOptions{.name = "fetch-user"});
  //! [in-flight]
  for (const loopbridge::TaskInfo& t : loop.in_flight().get())   // or wait_for(...) first
    std::cerr << t.to_string() << "\n";     // fetch-user (server.cpp:88, age 1520 ms, running)
  //! [in-flight]
  const auto listed = loop.in_flight().get();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].to_string().find("fetch-user (") == 0);
  CHECK(listed[0].phase == loopbridge::TaskPhase::running);
  loop.stop();
  CHECK_THROWS_AS(user.get(), loopbridge::TaskCancelled);
}

//! [hygiene]
LOOPBRIDGE_TEST_CASE("the handler answers within its deadline", "[http]") {
  loopbridge::BackgroundLoop loop({.name = "test"});
  loop.start();
  auto status = loop.submit(handle_request);
  REQUIRE(status.wait_for(1s) == std::future_status::ready);
  CHECK(status.get() == 200);
  loop.stop();
}
//! [hygiene]

LOOPBRIDGE_TEST_CASE("operations guide: a pool runs keyed work on one loop and stops every loop", "[docs][pool]") {
  const int user_id = 7;
  const int connection_id = 12;
  std::atomic<int> messages{0};
  //! [pool]
  loopbridge::LoopPool pool({.loops = 8, .loop = {.name = "shard"}});   // 0: one per CPU this thread may use
  pool.start();
  auto a = pool.submit(job);                       // round robin
  auto b = pool.submit_keyed(user_id, job);        // the same key, the same loop, always
  pool.post_keyed(connection_id, [&messages] { ++messages; });
  std::size_t n = pool.cancel_all_and_wait();      // every loop; waits for the unwinding
  loopbridge::LoopStats s = pool.stats();          // summed; lag percentiles over all loops
  loopbridge::ShutdownReport r = pool.stop();      // every loop winds down at once
  //! [pool]
  CHECK(n >= 2);  // the two jobs, and the posted callable if it had not run yet
  CHECK_THROWS_AS(a.get(), loopbridge::TaskCancelled);
  CHECK_THROWS_AS(b.get(), loopbridge::TaskCancelled);
  CHECK(s.submitted == 3);
  CHECK(r.joined);
}
