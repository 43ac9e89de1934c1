// A legacy pool of worker threads calling async code through one loop.
//
// Each worker handles jobs synchronously, as it always did; a job that needs async I/O makes
// a blocking loopbridge::run() call with a deadline. The loop also hosts a TCP echo service
// on 127.0.0.1 (port 0: the system picks one), which the jobs talk to. The program shows,
// and checks, every outcome a worker can get back:
//   - a value: a timer-based computation, and a TCP round trip to the echo service;
//   - the async code's own exception, with its own type: a connection refused;
//   - Timeout: a reply that never comes within the call's deadline (the call is cancelled
//     and has unwound when run() throws: nothing is left running behind the worker);
//   - TaskCancelled: calls still in flight when the program stops the loop;
//   - LoopStopped: calls made after the stop, refused at once.
// It exits non-zero if any job got another outcome than the one expected.

#include <loopbridge/loopbridge.hpp>

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

// --- Async code: runs on the loop thread -------------------------------------------------

/// A line echo service: each connection gets back every line it sends.
class EchoService {
public:
  explicit EchoService(loopbridge::LoopHandle loop) : loop_(std::move(loop)) {}

  // The loop's lifecycle hooks: the acceptor is made and destroyed on the loop thread.
  asio::awaitable<void> open() {
    acceptor_.emplace(loop_.get_executor(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    port_ = acceptor_->local_endpoint().port();
    co_return;
  }
  asio::awaitable<void> close() {
    acceptor_.reset();
    co_return;
  }

  /// Accepts connections until the acceptor closes; each one is served by a task of its own.
  asio::awaitable<void> serve() {
    for (;;) {
      auto [error, socket] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
      if (error == asio::error::operation_aborted) co_return;
      if (error) continue;
      try {
        loop_.post(echo_lines(std::move(socket)));  // fire-and-forget: errors reach the error handler
      } catch (const loopbridge::LoopStopped&) {
        co_return;  // the loop is stopping: the connection closes unserved
      }
    }
  }

  /// Set by open(); start() returns after the hooks ran, so host threads may read it then.
  unsigned short port() const { return port_; }

private:
  static asio::awaitable<void> echo_lines(tcp::socket socket) {
    std::string buffer;
    for (;;) {
      auto [error, length] =
          co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::as_tuple(asio::use_awaitable));
      if (error) co_return;  // the client hung up, or the loop is stopping
      co_await asio::async_write(socket, asio::buffer(buffer.data(), length), asio::use_awaitable);
      buffer.erase(0, length);
    }
  }

  loopbridge::LoopHandle loop_;
  std::optional<tcp::acceptor> acceptor_;
  unsigned short port_ = 0;
};

/// A computation that takes a little time: `n` squared, after a timer.
asio::awaitable<int> slow_square(int n) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 2ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return n * n;
}

//! [round-trip]
/// Connects to `port` on 127.0.0.1, sends `message` as a line (unless it is empty) and
/// returns the line that comes back.
asio::awaitable<std::string> round_trip(unsigned short port, std::string message) {
  tcp::socket socket(co_await asio::this_coro::executor);
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
  co_await socket.async_connect(endpoint, asio::use_awaitable);
  if (!message.empty()) {
    const std::string line = message + "\n";
    co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
  }
  std::string reply;
  const std::size_t length = co_await asio::async_read_until(socket, asio::dynamic_buffer(reply), '\n', asio::use_awaitable);
  reply.resize(length - 1);
  co_return reply;
}
//! [round-trip]

// --- The legacy side: plain threads, plain blocking calls --------------------------------

/// A fixed pool of threads taking jobs from a queue, as legacy servers have.
class WorkerPool {
public:
  explicit WorkerPool(int size) {
    for (int n = 0; n < size; ++n) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() { join(); }

  void push(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  /// Lets the workers finish every queued job, then joins them.
  void join() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return closing_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool closing_ = false;
  std::vector<std::thread> threads_;
};

/// What each job got back, against what it should have.
class Outcomes {
public:
  /// Runs `call` and records how it ended.
  void record(const std::string& job, const std::string& expected, const std::function<std::string()>& call) {
    std::string outcome;
    //! [outcomes]
    try {
      outcome = "value " + call();
    } catch (const loopbridge::Timeout&) {
      outcome = "Timeout";
    } catch (const loopbridge::TaskCancelled&) {
      outcome = "TaskCancelled";
    } catch (const loopbridge::LoopStopped&) {
      outcome = "LoopStopped";
    } catch (const boost::system::system_error& e) {
      outcome = "system_error " + e.code().message();
    } catch (const std::exception& e) {
      outcome = std::string("unexpected exception: ") + e.what();
    }
    //! [outcomes]
    std::lock_guard lock(mutex_);
    ++counts_[outcome == expected ? "as expected: " + expected.substr(0, expected.find(' ')) : "WRONG"];
    if (outcome != expected) wrong_.push_back(job + ": expected " + expected + ", got " + outcome);
  }

  /// Prints the counts and every wrong outcome; true when there were none.
  bool print() const {
    std::lock_guard lock(mutex_);
    for (const auto& [what, count] : counts_) std::cout << "  " << what << ": " << count << "\n";
    for (const auto& line : wrong_) std::cout << "  " << line << "\n";
    return wrong_.empty();
  }

private:
  mutable std::mutex mutex_;
  std::map<std::string, int> counts_;
  std::vector<std::string> wrong_;
};

/// Polls `condition` until it holds or `deadline` passes.
template <class Condition>
bool wait_until_true(Condition condition, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

int main() {
  loopbridge::BackgroundLoop loop({.name = "workers-io"});
  EchoService echo(loop.handle());
  loop.on_start_stop([&] { return echo.open(); }, [&] { return echo.close(); });
  loop.start();
  auto serving = loop.submit([&] { return echo.serve(); });

  // A port where nothing listens: a bound socket that never listens refuses connections.
  asio::io_context local;
  tcp::socket closed_port(local, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const unsigned short refused_port = closed_port.local_endpoint().port();
  const unsigned short echo_port = echo.port();

  Outcomes outcomes;
  WorkerPool pool(4);

  std::cout << "normal operation: 4 workers, 40 jobs\n";
  std::atomic<int> jobs_done{0};
  for (int n = 0; n < 10; ++n) {
    pool.push([&, n] {
      outcomes.record("square " + std::to_string(n), "value " + std::to_string(n * n), [&] {
        return std::to_string(loopbridge::run(loop, [n] { return slow_square(n); }, 2s));
      });
      ++jobs_done;
    });
    //! [echo-job]
    pool.push([&, n] {
      const std::string message = "hello " + std::to_string(n);
      outcomes.record("echo " + message, "value " + message, [&] {
        return loopbridge::run(loop, [&] { return round_trip(echo_port, message); }, 2s);
      });
      ++jobs_done;
    });
    //! [echo-job]
    pool.push([&, n] {
      outcomes.record("connect to a closed port " + std::to_string(n), "system_error Connection refused", [&] {
        return loopbridge::run(loop, [&] { return round_trip(refused_port, "anyone?"); }, 2s);
      });
      ++jobs_done;
    });
    pool.push([&, n] {
      // Sends nothing, so no reply ever comes: the 20 ms deadline passes.
      outcomes.record("wait for a reply " + std::to_string(n), "Timeout", [&] {
        return loopbridge::run(loop, [&] { return round_trip(echo_port, ""); }, 20ms);
      });
      ++jobs_done;
    });
  }
  if (!wait_until_true([&] { return jobs_done == 40; }, 30s)) {
    std::cout << "the jobs did not finish within 30 s\n";
    return 1;
  }
  bool ok = outcomes.print();

  std::cout << "shutdown: 4 calls in flight, 4 more queued, then the loop stops\n";
  Outcomes at_shutdown;
  std::atomic<int> in_flight{0};
  for (int n = 0; n < 4; ++n) {
    pool.push([&, n] {
      at_shutdown.record("in flight " + std::to_string(n), "TaskCancelled", [&] {
        return loopbridge::run(loop, [&]() -> asio::awaitable<std::string> {
          ++in_flight;
          auto reply = round_trip(echo_port, "");  // sends nothing: no reply ever comes
          co_return co_await std::move(reply);
        }, 60s);
      });
    });
  }
  // Every worker is now blocked in a call; these wait in the pool's queue until the stop.
  for (int n = 0; n < 4; ++n) {
    pool.push([&, n] {
      at_shutdown.record("after the stop " + std::to_string(n), "LoopStopped", [&] {
        return std::to_string(loopbridge::run(loop, [n] { return slow_square(n); }, 2s));
      });
    });
  }
  if (!wait_until_true([&] { return in_flight == 4; }, 30s)) {
    std::cout << "the calls did not start within 30 s\n";
    return 1;
  }
  //! [shutdown]
  loopbridge::ShutdownReport report = loop.stop();
  pool.join();
  //! [shutdown]
  ok = at_shutdown.print() && ok;

  std::cout << "loop: " << report.summary() << "\n";
  // Every submission is accounted for, and nothing was left running.
  const bool reconciled = report.submitted == report.completed + report.failed + report.cancelled +
                                                  report.abandoned + report.rejected;
  ok = ok && reconciled && report.abandoned == 0 && report.joined && serving.ready();
  std::cout << (ok ? "every outcome as expected\n" : "SOME OUTCOMES WERE WRONG\n");
  return ok ? 0 : 1;
}
