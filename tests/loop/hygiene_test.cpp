// Thread and descriptor hygiene over many loop lifetimes, and the Catch2 hygiene fixture
// on tests that behave.

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/testing/catch2.hpp>

#include "support/deadline.hpp"

#include <dirent.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

std::size_t count_entries(const char* dir_path) {
  std::size_t count = 0;
  if (DIR* dir = ::opendir(dir_path)) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
  }
  return count;
}

}  // namespace

TEST_CASE("threads and descriptors return to baseline over 1000 create-start-stop cycles", "[loop][hygiene]") {
  // One cycle first, so that lazily created process-wide state is in the baseline.
  {
    BackgroundLoop warm({.name = "cycle"});
    warm.start();
  }
  const std::size_t threads_before = count_entries("/proc/self/task");
  const std::size_t fds_before = count_entries("/proc/self/fd");
  for (int i = 0; i < 1000; ++i) {
    BackgroundLoop loop({.name = "cycle"});
    loop.start();
    if (i % 10 == 0) {
      auto h = loop.submit([]() -> asio::awaitable<int> {
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        co_await timer.async_wait(asio::use_awaitable);
        co_return 1;
      });
    }
    loop.stop();
  }
  // Joined threads may take a moment to leave /proc.
  CHECK(eventually([&] { return count_entries("/proc/self/task") == threads_before; }));
  CHECK(count_entries("/proc/self/fd") == fds_before);
}

LOOPBRIDGE_TEST_CASE("a test that stops its loops passes the hygiene checks", "[loop][hygiene][testing]") {
  BackgroundLoop loop({.name = "tidy"});
  loop.start();
  auto parked = loop.submit([]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await timer.async_wait(asio::use_awaitable);
  });
  loop.stop();
  REQUIRE_THROWS_AS(parked.get(), TaskCancelled);
}
