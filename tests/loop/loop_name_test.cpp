#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_pool.hpp>
#include <loopbridge/bridge/to_thread.hpp>

#include "support/deadline.hpp"

#include "thread_name.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// Whether `text` is whole UTF-8 characters (no check of overlong forms: the cut only ever
// removes bytes from the end).
bool whole_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// The calling thread's name as the system keeps it.
std::string this_thread_os_name() {
  char name[64] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

// 50 Greek alphas (2 bytes each): byte 15 falls in the middle of the eighth.
const std::string kLongName = [] {
  std::string name;
  for (int i = 0; i < 50; ++i) name += "\u03b1";
  return name;
}();

// Sends fd 2 to a temporary file while it lives.
class StderrCapture {
public:
  StderrCapture() : file_(std::tmpfile()), saved_(::dup(2)) {
    std::fflush(stderr);
    ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::fclose(file_);
  }
  std::string text() {
    std::fflush(stderr);
    std::string text;
    std::rewind(file_);
    for (int c; (c = std::fgetc(file_)) != EOF;) text += static_cast<char>(c);
    return text;
  }

private:
  std::FILE* file_;
  int saved_;
};

}  // namespace

TEST_CASE("the system's thread name is the longest prefix of 15 bytes that ends on a character", "[loop][name]") {
  using detail::utf8_prefix;
  CHECK(utf8_prefix("short", 15) == "short");
  CHECK(utf8_prefix("exactly-fifteen", 15) == "exactly-fifteen");
  CHECK(utf8_prefix("sixteen-bytes-xx", 15) == "sixteen-bytes-x");
  // A character of 2, 3 and 4 bytes straddling byte 15 is left out whole.
  CHECK(utf8_prefix("abcdefghijklmn\u00e9z", 15) == "abcdefghijklmn");      // bytes 14-15
  CHECK(utf8_prefix("abcdefghijklm\u20acz", 15) == "abcdefghijklm");        // bytes 13-15
  CHECK(utf8_prefix("abcdefghijkl\U0001F600z", 15) == "abcdefghijkl");      // bytes 12-15
  CHECK(utf8_prefix("abcdefghijk\U0001F600z", 15) == "abcdefghijk\U0001F600");  // ends at byte 14
  CHECK(utf8_prefix(kLongName, 15) == kLongName.substr(0, 14));
  // Bytes that are no UTF-8 (more continuation bytes than a character has) are cut anywhere.
  CHECK(utf8_prefix(std::string(20, '\x80'), 15) == std::string(15, '\x80'));
  for (std::size_t limit = 0; limit <= kLongName.size(); ++limit) {
    const std::string_view prefix = utf8_prefix(kLongName, limit);
    CHECK(prefix.size() <= limit);
    CHECK(prefix.size() + 1 >= limit);  // at most one byte of the cut character is left over
    CHECK(whole_utf8(prefix));
  }
}

TEST_CASE("a loop takes a name of any length and the system's thread name is its cut prefix", "[loop][name]") {
  std::string name = "a-loop-name-well-past-the-fifteen-bytes-that-linux-keeps-for-a-thread:";
  name += "\u00e9\u20ac\U0001F600";
  name.resize(100, 'x');
  REQUIRE(name.size() == 100);
  for (const std::string& full : {name, kLongName}) {
    BackgroundLoop loop({.name = full});
    loop.start();
    CHECK(loop.name() == full);
    auto os_name = loop.submit([] { return this_thread_os_name(); });
    require_settles(os_name);
    const std::string seen = os_name.get();
    CHECK(seen == detail::utf8_prefix(full, 15));
    CHECK(whole_utf8(seen));
    // The workers keep their suffix within the limit.
    auto worker_name = loop.submit([]() -> asio::awaitable<std::string> {
      auto op = to_thread([] { return this_thread_os_name(); });
      co_return co_await std::move(op);
    });
    require_settles(worker_name);
    CHECK(worker_name.get() == std::string(detail::utf8_prefix(full, 13)) + "-w");
    loop.stop();
  }
}

TEST_CASE("the whole name is what loopbridge reports the loop by", "[loop][name]") {
  std::mutex mutex;
  std::vector<std::string> stalled_loops;
  LoopOptions options{.name = kLongName};
  options.stall_threshold = std::chrono::milliseconds(1);
  options.stall_handler = [&](const StallReport& report) {
    std::lock_guard lock(mutex);
    stalled_loops.push_back(report.loop);
  };
  BackgroundLoop loop(options);
  loop.start();
  auto blocker = loop.submit([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  require_settles(blocker);
  REQUIRE(eventually([&] {
    std::lock_guard lock(mutex);
    return !stalled_loops.empty();
  }));
  {
    std::lock_guard lock(mutex);
    CHECK(stalled_loops[0] == kLongName);
  }

  const auto live = live_loops();
  CHECK(std::count_if(live.begin(), live.end(), [](const LoopHandle& l) { return l.name() == kLongName; }) == 1);

  PoolOptions pool_options{.loops = 2};
  pool_options.loop.name = kLongName;
  LoopPool pool(pool_options);
  CHECK(pool.loop(0).name() == kLongName + "0");
  CHECK(pool.loop(1).name() == kLongName + "1");
}

TEST_CASE("the default error handler's line names the loop in full", "[loop][name][errors]") {
  BackgroundLoop loop({.name = kLongName});
  loop.start();
  StderrCapture captured;
  loop.post([] { throw std::runtime_error("posted failure"); });
  REQUIRE(eventually([&] { return loop.unhandled_errors() == 1; }));
  const std::string text = captured.text();
  CHECK(text.find("loopbridge[" + kLongName + "]: unhandled error in posted task: posted failure") != std::string::npos);
}

TEST_CASE("an empty name and a name with NUL are refused with InvalidArgument", "[loop][name][errors]") {
  CHECK_THROWS_AS(BackgroundLoop({.name = ""}), InvalidArgument);
  CHECK_THROWS_AS(BackgroundLoop({.name = std::string("nul\0in", 6)}), InvalidArgument);
  PoolOptions pool_options{.loops = 1};
  pool_options.loop.name = std::string("nul\0in", 6);
  CHECK_THROWS_AS(LoopPool(pool_options), InvalidArgument);
}
