#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dirent.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

constexpr IoBackend kBuiltFor =
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
    IoBackend::io_uring;
#else
    IoBackend::epoll;
#endif

/// Whether some descriptor of this process is the kernel object `kind` ("[io_uring]",
/// "[eventpoll]"), as /proc/self/fd shows them.
bool has_descriptor_of(const std::string& kind) {
  bool found = false;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* entry = ::readdir(dir)) {
      char target[256] = {};
      std::string path = std::string("/proc/self/fd/") + entry->d_name;
      if (::readlink(path.c_str(), target, sizeof target - 1) <= 0) continue;
      if (std::string(target).find(kind) != std::string::npos) found = true;
    }
    ::closedir(dir);
  }
  return found;
}

/// Asks the kernel itself whether this process may set up an io_uring.
bool kernel_allows_io_uring() {
  io_uring_params params{};
  long fd = ::syscall(__NR_io_uring_setup, 4, &params);
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
}

/// Makes io_uring_setup fail with EPERM for the calling thread (and threads it creates), as
/// the seccomp policy of a container runtime does. Irreversible: call it on a thread made
/// for the purpose.
bool refuse_io_uring_on_this_thread() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

/// What constructing (and, if that worked, running) a loop gives: its backend, or the
/// BackendUnavailable it threw.
struct Outcome {
  std::optional<IoBackend> backend;
  std::optional<int> timer_rounds;
  std::string unavailable;  // the error's message when construction refused
};

Outcome try_a_loop(const char* name) {
  Outcome outcome;
  try {
    BackgroundLoop loop({.name = name});
    outcome.backend = loop.backend();
    loop.start();
    auto rounds = loop.submit([]() -> asio::awaitable<int> {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      int n = 0;
      for (; n < 3; ++n) {
        timer.expires_after(1ms);
        co_await timer.async_wait(asio::use_awaitable);
      }
      co_return n;
    });
    if (rounds.wait_for(kDeadline) == std::future_status::ready) outcome.timer_rounds = rounds.get();
  } catch (const BackendUnavailable& e) {
    outcome.unavailable = e.what();
    if (e.code() != errc::backend_unavailable) outcome.unavailable = "wrong code";
  }
  return outcome;
}

using Stream = asio::local::stream_protocol::socket;

/// Reads one byte `rounds` times, each read started before its byte is sent (with send(2),
/// not an Asio operation), so that every read waits in the kernel: on io_uring, one
/// submission entry each, tagged with the reader's read queue, until every entry of the ring
/// has carried that tag.
asio::awaitable<void> read_byte_by_byte(Stream& reader, Stream& writer, int rounds) {
  char in = 0;
  for (int i = 0; i < rounds; ++i) {
    auto read = asio::async_initiate<const asio::use_awaitable_t<>&, void(boost::system::error_code, std::size_t)>(
        [&](auto handler) {
          reader.async_read_some(asio::buffer(&in, 1), std::move(handler));
          const char out = 'x';
          if (::send(writer.native_handle(), &out, 1, 0) != 1) throw std::runtime_error("send failed");
        },
        asio::use_awaitable);
    if (co_await std::move(read) != 1) throw std::runtime_error("a read of one byte read none");
  }
}

/// What the reads of the test below saw: nullopt while a read is still pending.
struct ReadOutcomes {
  std::optional<boost::system::error_code> cancelled_read;    // b's read, cancelled
  std::optional<boost::system::error_code> bystander_early;   // a's read, before its data came
  std::optional<boost::system::error_code> bystander_final;   // a's read, once its data came
  std::size_t bystander_bytes = 0;
};

/// "pending", or what the read ended with, for the checks' messages.
std::string outcome_text(const std::optional<boost::system::error_code>& error) {
  return error ? (*error ? error->message() : "success") : "pending";
}

}  // namespace

TEST_CASE("the loop reports the backend loopbridge was built for and really runs on it", "[loop][backend]") {
  if (kBuiltFor == IoBackend::io_uring && !kernel_allows_io_uring()) {
    // This kernel refuses io_uring: the io_uring build must say so at construction.
    Outcome outcome = try_a_loop("lb-backend");
    CHECK_FALSE(outcome.backend);
    CHECK(outcome.unavailable.find("io_uring") != std::string::npos);
    return;
  }
  BackgroundLoop loop({.name = "lb-backend"});
  CHECK(loop.backend() == kBuiltFor);
  CHECK(to_string(loop.backend()) == (kBuiltFor == IoBackend::io_uring ? "io_uring" : "epoll"));
  loop.start();
  // The kernel object Asio waits on is open in this process once the loop has used a timer
  // (the io_uring build opens it at construction, to refuse early where it cannot).
  auto timed = loop.submit([]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
  });
  REQUIRE(timed.wait_for(kDeadline) == std::future_status::ready);
  CHECK(has_descriptor_of(kBuiltFor == IoBackend::io_uring ? "[io_uring]" : "[eventpoll]"));
  if (kBuiltFor == IoBackend::io_uring) CHECK_FALSE(has_descriptor_of("[eventpoll]"));
  loop.stop();
}

TEST_CASE("the kernel's answer to io_uring_setup decides whether a loop can be made", "[loop][backend]") {
  Outcome outcome = try_a_loop("lb-kernel");
  if (kBuiltFor == IoBackend::io_uring && !kernel_allows_io_uring()) {
    CHECK_FALSE(outcome.backend);
    CHECK(outcome.unavailable.find("io_uring is unavailable") != std::string::npos);
  } else {
    CHECK(outcome.backend == kBuiltFor);
    CHECK(outcome.timer_rounds == 3);
  }
}

TEST_CASE("where a seccomp policy refuses io_uring the constructor throws BackendUnavailable", "[loop][backend]") {
  Outcome outcome;
  bool filtered = false;
  bool kernel_refuses_after_filter = false;
  std::thread confined([&] {
    filtered = refuse_io_uring_on_this_thread();
    kernel_refuses_after_filter = !kernel_allows_io_uring();
    if (filtered) outcome = try_a_loop("lb-confined");
  });
  confined.join();
  REQUIRE(filtered);
  CHECK(kernel_refuses_after_filter);
  if (kBuiltFor == IoBackend::io_uring) {
    // A clear error at once, not a hang inside the loop and not an abort.
    CHECK_FALSE(outcome.backend);
    CHECK(outcome.unavailable.find("io_uring is unavailable") != std::string::npos);
    CHECK(outcome.unavailable.find("Operation not permitted") != std::string::npos);
  } else {
    // epoll does not need io_uring: the same policy changes nothing.
    CHECK(outcome.backend == IoBackend::epoll);
    CHECK(outcome.timer_rounds == 3);
  }
}

TEST_CASE("cancelling one socket's read completes no other socket's read", "[loop][backend]") {
  // On io_uring, Asio 1.26 (Boost 1.81) wrote its cancel request into a reused submission
  // entry without clearing the tag an earlier operation left there, so the cancel's answer
  // completed that earlier operation's socket: a read ended early with end-of-file or
  // ENOENT, and its real completion was lost (futures that never resolved under load).
  if (kBuiltFor == IoBackend::io_uring && !kernel_allows_io_uring()) return;
  BackgroundLoop loop({.name = "lb-cancel-one"});
  loop.start();
  auto outcomes = loop.submit([]() -> asio::awaitable<ReadOutcomes> {
    auto executor = co_await asio::this_coro::executor;
    Stream a(executor), a_peer(executor), b(executor), b_peer(executor);
    asio::local::connect_pair(a, a_peer);
    asio::local::connect_pair(b, b_peer);
    auto churn = read_byte_by_byte(a, a_peer, 20'000);  // more reads than Asio's ring has entries
    co_await std::move(churn);

    ReadOutcomes seen;
    char a_byte = 0, b_byte = 0;
    a.async_read_some(asio::buffer(&a_byte, 1), [&](boost::system::error_code error, std::size_t bytes) {
      seen.bystander_final = error;
      seen.bystander_bytes = bytes;
    });
    asio::cancellation_signal cancel_b;
    b.async_read_some(asio::buffer(&b_byte, 1),
                      asio::bind_cancellation_slot(cancel_b.slot(), [&](boost::system::error_code error, std::size_t) {
                        seen.cancelled_read = error;
                      }));
    co_await sleep_for(5ms);  // both reads are in the kernel now
    cancel_b.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 200 && !seen.cancelled_read; ++i) co_await sleep_for(5ms);
    co_await sleep_for(50ms);  // time for a wrongly delivered completion to arrive
    seen.bystander_early = seen.bystander_final;

    const char data = 'y';
    asio::write(a_peer, asio::buffer(&data, 1));
    for (int i = 0; i < 200 && !seen.bystander_final; ++i) co_await sleep_for(5ms);
    a.close();  // ends a read that never completed, before its handler's captures go
    b.close();
    co_await sleep_for(5ms);
    co_return seen;
  });
  require_settles(outcomes, 60s);
  ReadOutcomes seen = outcomes.get();
  CHECK(outcome_text(seen.cancelled_read) == outcome_text(asio::error::operation_aborted));
  CHECK(outcome_text(seen.bystander_early) == "pending");  // was "End of file": b's cancel's answer
  CHECK(outcome_text(seen.bystander_final) == "success");
  CHECK(seen.bystander_bytes == 1);
  loop.stop();
}
