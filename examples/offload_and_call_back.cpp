// Async code that needs the synchronous world back, within one blocking call.
//
// Worker threads each make loopbridge::run() calls. The coroutine behind each call offloads
// a blocking function to the loop's worker pool with to_thread(), then calls back into the
// very worker thread that is waiting for it with call_host(), to touch an object only that
// thread may touch (asgiref's thread-sensitive mode). A request id set on the worker
// follows the call across all three hops. The program checks where each piece ran.

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct RequestId {
  int value;
};

/// A legacy object that only the thread that made it may touch (a database session, a UI
/// handle): it throws when used from any other thread.
class ThreadBoundJournal {
public:
  void append(const std::string& line) {
    if (std::this_thread::get_id() != owner_) throw std::logic_error("journal used from a foreign thread");
    lines_.push_back(line);
  }
  std::size_t size() const { return lines_.size(); }

private:
  std::thread::id owner_ = std::this_thread::get_id();
  std::vector<std::string> lines_;
};

/// An async "service": waits a little, then answers.
asio::awaitable<std::string> lookup(int key) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 2ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return "value-" + std::to_string(key);
}

/// Blocking work that must not run on the loop thread: a checksum "computed" slowly.
std::size_t slow_checksum(const std::string& value) {
  std::this_thread::sleep_for(1ms);
  return value.size() * 7 + static_cast<std::size_t>(loopbridge::context_value<RequestId>()->value);
}

int main() {
  loopbridge::BackgroundLoop loop({.name = "example-io"});
  loop.start();

  std::atomic<int> wrong{0};
  std::mutex out;
  std::vector<std::thread> workers;
  for (int worker = 0; worker < 4; ++worker) {
    workers.emplace_back([&, worker] {
      ThreadBoundJournal journal;  // this worker's own
      for (int request = 0; request < 3; ++request) {
        const int id = worker * 10 + request;
        loopbridge::ContextScope scope(loopbridge::ContextScope::with(RequestId{id}));
        std::string line = loopbridge::run(
            loop,
            [&]() -> asio::awaitable<std::string> {
              auto value = co_await lookup(request);  // async, on the loop thread
              auto checksum_op = loopbridge::to_thread([value] { return slow_checksum(value); });
              std::size_t checksum = co_await std::move(checksum_op);  // on a pool thread
              auto journal_op = loopbridge::call_host([&journal, value, checksum] {
                std::string entry = value + " (checksum " + std::to_string(checksum) + ", request " +
                                    std::to_string(loopbridge::context_value<RequestId>()->value) + ")";
                journal.append(entry);  // back on this worker, which waits in run()
                return entry;
              });
              co_return co_await std::move(journal_op);
            },
            5s);
        const std::string expected = "value-" + std::to_string(request) + " (checksum " +
                                     std::to_string(7 * 7 + id) + ", request " + std::to_string(id) + ")";
        if (line != expected) ++wrong;
        std::lock_guard lock(out);
        std::cout << "worker " << worker << ": " << line << "\n";
      }
      if (journal.size() != 3) ++wrong;
    });
  }
  for (auto& worker : workers) worker.join();

  loopbridge::ShutdownReport report = loop.stop();
  std::cout << "shutdown: " << report.summary() << "\n";
  return wrong == 0 && report.completed == 12 && report.joined ? 0 : 1;
}
