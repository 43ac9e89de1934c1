// The code of docs/customise.md. Each `//! [name]` region is shown in the guide as it is here
// (tests/docs/check_doc_snippets.cpp checks that). The patterns the guide warns against are
// compiled too, in functions that nothing calls.

#include <loopbridge/loopbridge.hpp>

#include "support/deadline.hpp"
#include "support/line_server.hpp"

#include <boost/asio.hpp>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <iostream>
#include <memory>
#include <thread>

namespace {

using tcp = boost::asio::ip::tcp;
using loopbridge::test::LineServer;
using namespace std::chrono_literals;

/// Stands for a third-party library written against Asio (an SMTP receiver, say): it accepts
/// connections and counts them.
class SmtpServer : public std::enable_shared_from_this<SmtpServer> {
public:
  static std::shared_ptr<SmtpServer> open(boost::asio::any_io_executor executor, tcp::endpoint where) {
    auto server = std::make_shared<SmtpServer>(std::move(executor), where);
    server->accept();
    return server;
  }
  SmtpServer(boost::asio::any_io_executor executor, tcp::endpoint where) : acceptor_(std::move(executor), where) {}
  SmtpServer(boost::asio::io_context& io, tcp::endpoint where) : acceptor_(io, where) {}

  void close() { acceptor_.close(); }
  int sessions() const { return sessions_; }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

private:
  void accept() {
    acceptor_.async_accept([self = shared_from_this()](boost::system::error_code error, tcp::socket) {
      if (error) return;  // closed
      ++self->sessions_;
      self->accept();
    });
  }

  tcp::acceptor acceptor_;
  int sessions_ = 0;
};

// Where the guide's services listen: a free port on 127.0.0.1.
const tcp::endpoint smtp_address{boost::asio::ip::address_v4::loopback(), 0};

boost::asio::awaitable<int> fetch_answer() { co_return 42; }

std::atomic<int> used{0};
void use(int value) { used = value; }

bool this_thread_may_use_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof set, &set);
  return CPU_ISSET(cpu, &set);
}

// ---- the patterns not to follow: compiled, never run ----

[[maybe_unused]] void a_second_loop_made_by_accident() {
  //! [second-loop]
  boost::asio::io_context io;                 // a second event loop...
  SmtpServer smtp(io, smtp_address);
  std::thread smtp_thread([&] { io.run(); }); // ...on a second thread

  loopbridge::BackgroundLoop loop;            // the application's loop: another thread
  loop.start();
  auto count = loop.submit([&] { return smtp.sessions(); });  // a data race: smtp lives on smtp_thread
  //! [second-loop]
}

[[maybe_unused]] void one_io_context_on_two_threads() {
  //! [two-runners]
  boost::asio::io_context io;
  LineServer server(io);
  loopbridge::BackgroundLoop loop(io);
  loop.start();
  std::thread extra([&] { io.run(); });   // a second runner: server and the loop's tasks
                                          // now run on two threads at once
  //! [two-runners]
}

[[maybe_unused]] void a_hand_made_loop_thread() {
  //! [hand-made]
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });   // who stops it? when do pending tasks settle?
  std::future<int> answer = boost::asio::co_spawn(io, fetch_answer(), boost::asio::use_future);
  io.stop();                               // from another thread: pending work just stays,
  runner.join();                           // and `answer` waits until io is destroyed
  //! [hand-made]
}

}  // namespace

TEST_CASE("customise: a third party made in an on_start hook and closed in an on_stop hook", "[docs]") {
  //! [hooks]
  std::shared_ptr<SmtpServer> smtp;   // a library that takes an Asio executor (declared
                                      // before the loop, whose on_stop hook closes it)
  loopbridge::BackgroundLoop loop({.name = "app"});
  loop.on_start_stop(
      [&]() -> boost::asio::awaitable<void> {
        smtp = SmtpServer::open(loop.get_executor(), smtp_address);
        co_return;
      },
      [&]() -> boost::asio::awaitable<void> {
        smtp->close();
        smtp.reset();   // on the loop thread, like everything it did
        co_return;
      });
  loop.start();         // returns once it listens
  //! [hooks]
  auto port = loop.submit([&] { return smtp->port(); });
  loopbridge::test::require_settles(port);
  boost::asio::io_context client_io;
  tcp::socket client(client_io);
  client.connect({boost::asio::ip::address_v4::loopback(), port.get()});
  //! [host-reads]
  auto sessions = loop.submit([&] { return smtp->sessions(); });   // read on the loop thread
  //! [host-reads]
  CHECK(loopbridge::test::eventually([&] {
    auto count = loop.submit([&] { return smtp->sessions(); });
    return count.wait_for(loopbridge::test::kDeadline) == std::future_status::ready && count.get() == 1;
  }));
  loopbridge::test::require_settles(sessions);
  loop.stop();
  CHECK_FALSE(smtp);  // closed and dropped by the on_stop hook
}

TEST_CASE("customise: a loop drives an io_context its owner keeps", "[docs]") {
  //! [borrowed]
  boost::asio::io_context io;
  LineServer server(io);                              // a third party, made against the plain io_context

  loopbridge::BackgroundLoop loop(io, {.name = "app"});
  loop.start();                                       // the loop's thread runs io now: server answers there
  int answer = loop.submit(fetch_answer).get();      // your tasks share that thread with it
  loopbridge::ShutdownReport report = loop.stop();    // every handle settled, thread joined

  io.restart();                                       // io is yours again: stopped, alive, server intact
  std::thread owner([&] { io.run(); });               // server answers on your thread now
  //! [borrowed]
  CHECK(report.joined);
  CHECK(answer == 42);
  CHECK(loopbridge::test::fetch_line(server.port()).starts_with("served by"));
  boost::asio::post(io, [&] { server.close(); });  // its last work: run() returns
  owner.join();
}

TEST_CASE("customise: the main thread runs the loop", "[docs]") {
  //! [run-here]
  loopbridge::BackgroundLoop loop({.name = "main"});
  std::thread worker;
  loop.on_start([&]() -> boost::asio::awaitable<void> {
    // The loop accepts work from here on: threads made now can submit at once.
    worker = std::thread([&] {
      auto answer = loop.submit(fetch_answer);
      use(answer.get());
      loop.stop();                // returns once the loop has ended on the main thread
    });
    co_return;
  });
  loopbridge::ShutdownReport report = loop.run_here();   // blocks until stopped
  worker.join();
  //! [run-here]
  CHECK(used == 42);
  CHECK(report.completed == 1);
}

TEST_CASE("customise: the loop tells its backend", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  //! [backend]
  std::cout << "running on " << loopbridge::to_string(loop.backend()) << "\n";   // "io_uring"
  //! [backend]
  CHECK((loop.backend() == loopbridge::IoBackend::epoll || loop.backend() == loopbridge::IoBackend::io_uring));
}

TEST_CASE("customise: the loop thread's options", "[docs]") {
  //! [thread-options]
  loopbridge::BackgroundLoop loop({
      .name = "market-data",          // /proc/self/task/*/comm, debuggers, top -H
      .cpu_affinity = {0},            // pinned to CPU 0
      .stack_size = 512 * 1024,       // bytes; 0: the system default
      .on_thread_start = [] {         // on the new thread, before the on_start hooks
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 5);   // nicer, this thread only
        sigset_t blocked;
        sigemptyset(&blocked);
        for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&blocked, signal);
        pthread_sigmask(SIG_BLOCK, &blocked, nullptr);   // these go to the other threads
      },
  });
  //! [thread-options]
  if (!this_thread_may_use_cpu(0)) return;  // a cpuset without CPU 0: start() would refuse the pinning
  loop.start();
  auto setup = loop.submit([] {
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    const bool pinned = loopbridge::platform_info().cpu_pinning.empty() || ::sched_getcpu() == 0;
    return pinned && ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) >= 5 &&
           sigismember(&mask, SIGTERM) == 1;
  });
  loopbridge::test::require_settles(setup);
  CHECK(setup.get());
  loop.stop();
}
