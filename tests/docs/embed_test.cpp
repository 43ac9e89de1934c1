// The code of docs/cookbook/embed-in-a-legacy-app.md, run. Each `//! [name]` region is shown
// in the guide as it is here. The legacy server is a stand-in (a few threads handling a
// fixed list of requests); examples/legacy_http_server.cpp is a real one.

#include <loopbridge/loopbridge.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Request {
  int user;
};

struct Response {
  int status;
  std::string body;
};

/// State the loop's tasks share: touched on the loop thread only.
class Cache {
public:
  boost::asio::awaitable<void> warm_up() {
    co_await loopbridge::test::sleep_for(1ms);  // say, a first load from a database
    names_ = {{1, "ada"}, {2, "grace"}};
  }
  boost::asio::awaitable<void> flush() {
    names_.clear();
    co_return;
  }
  std::string name(int user) const {
    auto found = names_.find(user);
    return found == names_.end() ? "?" : found->second;
  }
  bool warm() const { return !names_.empty(); }

private:
  std::map<int, std::string> names_;
};

/// The async work behind a request, on the loop thread; user 0's upstream never answers.
boost::asio::awaitable<std::string> fetch_dashboard(const Cache& cache, int user) {
  co_await loopbridge::test::sleep_for(user == 0 ? std::chrono::milliseconds(std::chrono::hours(1)) : 1ms);
  co_return "{\"user\": \"" + cache.name(user) + "\"}";
}

//! [handler]
/// A legacy request handler, run by the server's own threads (one per connection).
Response handle_dashboard(const loopbridge::LoopHandle& loop, const Cache& cache, const Request& request) {
  try {
    return {200, loopbridge::run(loop, [&] { return fetch_dashboard(cache, request.user); }, 200ms)};
  } catch (const loopbridge::Timeout&) {
    return {504, "the dashboard took too long"};  // its async work was cancelled: nothing leaks
  } catch (const loopbridge::LoopStopped&) {
    return {503, "shutting down"};                // refused: the loop is stopping or stopped
  } catch (const loopbridge::TaskCancelled&) {
    return {503, "shutting down"};                // the stop cancelled the call in flight
  }
}
//! [handler]

/// A stand-in for a thread-per-connection server: each "connection" is a thread that
/// handles its requests with the handler, then closes.
class ThreadPerConnectionServer {
public:
  using Handler = std::function<Response(const Request&)>;
  explicit ThreadPerConnectionServer(Handler handler) : handler_(std::move(handler)) {}

  /// Serves the requests, each connection on a thread of its own.
  void run_until_shutdown_requested() {
    for (const auto& connection : std::vector<std::vector<int>>{{1, 2}, {2, 0}, {1}}) {
      threads_.emplace_back([this, connection] {
        for (int user : connection) {
          Response response = handler_(Request{user});
          std::lock_guard lock(mutex_);
          statuses_.push_back(response.status);
        }
      });
    }
  }

  /// Stops taking connections and waits for the ones in progress.
  void stop_accepting_and_finish() {
    for (auto& thread : threads_) thread.join();
  }

  std::vector<int> statuses() const {
    std::lock_guard lock(mutex_);
    return statuses_;
  }

private:
  Handler handler_;
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::vector<int> statuses_;
};

}  // namespace

TEST_CASE("embedding: a legacy server calls async code through the loop it owns", "[docs]") {
  //! [app-main]
  Cache cache;                                          // what the loop's tasks use: made first,
  loopbridge::BackgroundLoop loop({.name = "app-io"});  // so that the loop stops before it goes
  loop.on_start_stop(
      [&]() -> boost::asio::awaitable<void> { co_await cache.warm_up(); },
      [&]() -> boost::asio::awaitable<void> { co_await cache.flush(); });
  loop.start();

  ThreadPerConnectionServer server([&](const Request& request) { return handle_dashboard(loop, cache, request); });
  server.run_until_shutdown_requested();  // the legacy part, unchanged

  server.stop_accepting_and_finish();     // requests in flight finish first, their run() calls too
  loopbridge::ShutdownReport report = loop.stop({.drain_timeout = 2s});
  std::cout << "shutdown: " << report.summary() << "\n";
  //! [app-main]

  std::vector<int> statuses = server.statuses();
  std::sort(statuses.begin(), statuses.end());
  CHECK(statuses == std::vector<int>{200, 200, 200, 200, 504});
  CHECK(report.cancelled == 1);  // the request past its deadline
  CHECK(report.abandoned == 0);
  CHECK_FALSE(cache.warm());     // the on_stop hook ran
}

TEST_CASE("embedding: requests during and after the stop get their own answer", "[docs]") {
  Cache cache;
  loopbridge::BackgroundLoop loop({.name = "app-io"});
  loop.on_start_stop([&]() -> boost::asio::awaitable<void> { co_await cache.warm_up(); },
                     [&]() -> boost::asio::awaitable<void> { co_await cache.flush(); });
  loop.start();
  CHECK(handle_dashboard(loop, cache, Request{1}).body == "{\"user\": \"ada\"}");

  Response during{};
  std::thread waiting([&] { during = handle_dashboard(loop, cache, Request{0}); });  // never answered
  REQUIRE(loopbridge::test::eventually([&] { return loop.stats().running == 1; }));
  loop.stop();
  waiting.join();
  CHECK(during.status == 503);
  CHECK(handle_dashboard(loop, cache, Request{1}).status == 503);
}
