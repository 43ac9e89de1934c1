// Synchronous worker threads calling async code through one loop: run() with a deadline,
// blocking work offloaded with to_thread(), a call back into the waiting worker with
// call_host(), and a request id that follows each call across the hops.

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct RequestId {
  int value;
};

// An async "service": waits a little, then answers.
asio::awaitable<std::string> lookup(int key, std::chrono::milliseconds latency) {
  asio::steady_timer timer(co_await asio::this_coro::executor, latency);
  co_await timer.async_wait(asio::use_awaitable);
  co_return "value-" + std::to_string(key);
}

int main() {
  loopbridge::BackgroundLoop loop({.name = "example-io"});
  loop.start();

  std::mutex out;
  std::atomic<int> answered{0}, timed_out{0};
  std::vector<std::thread> workers;
  for (int worker = 0; worker < 4; ++worker) {
    workers.emplace_back([&, worker] {
      std::string log_prefix = "worker " + std::to_string(worker);  // touched by this thread only
      for (int request = 0; request < 3; ++request) {
        loopbridge::ContextScope scope(loopbridge::ContextScope::with(RequestId{worker * 10 + request}));
        // Worker 3's last request is slower than its deadline: it is cancelled, not leaked.
        auto latency = (worker == 3 && request == 2) ? 10s : 5ms;
        try {
          std::string reply = loopbridge::run(
              loop,
              [&, latency]() -> asio::awaitable<std::string> {
                auto value = co_await lookup(request, latency);
                auto checksum_op = loopbridge::to_thread([value] {  // blocking work, off the loop
                  std::this_thread::sleep_for(1ms);
                  return value.size() * 7 + static_cast<std::size_t>(loopbridge::context_value<RequestId>()->value);
                });
                std::size_t checksum = co_await std::move(checksum_op);
                auto format_op = loopbridge::call_host([&log_prefix, value, checksum] {  // back on the worker
                  return log_prefix + ": " + value + " (checksum " + std::to_string(checksum) + ")";
                });
                co_return co_await std::move(format_op);
              },
              500ms);
          ++answered;
          std::lock_guard lock(out);
          std::cout << reply << "\n";
        } catch (const loopbridge::Timeout& e) {
          ++timed_out;
          std::lock_guard lock(out);
          std::cout << log_prefix << ": request " << request << " timed out (" << e.what() << ")\n";
        }
      }
    });
  }
  for (auto& w : workers) w.join();

  loopbridge::ShutdownReport report = loop.stop();
  std::cout << "answered " << answered << ", timed out " << timed_out << "; shutdown: " << report.summary() << "\n";
  return answered == 11 && timed_out == 1 && report.abandoned == 0 ? 0 : 1;
}
