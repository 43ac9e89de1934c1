// The process-wide default loop: library code that needs a loop, and is handed none, uses
// loopbridge::default_loop(), started on first use. Threads calling into the library share
// that one loop. At exit, the loop is stopped for you: work still pending on it is
// cancelled and unwinds before the process ends (returning from main is enough).
//
// default_loop_test.cpp shows how a test replaces the default loop with its own.

#include "forecast.hpp"

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

/// Prints when the background refresh unwinds, to show that the exit stopped it.
struct AnnounceUnwind {
  ~AnnounceUnwind() { std::cout << "the background refresh was cancelled at exit and unwound\n"; }
};

int main() {
  // Four threads, each using the library; the first call starts the default loop.
  std::vector<std::string> forecasts(4);
  std::vector<std::thread> threads;
  const char* cities[] = {"Oslo", "Lima", "Pune", "Kobe"};
  for (int n = 0; n < 4; ++n) {
    threads.emplace_back([&, n] { forecasts[n] = forecast::today(cities[n]); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& line : forecasts) std::cout << line << "\n";

  loopbridge::LoopHandle loop = loopbridge::default_loop();  // the same loop the library used
  std::cout << "the default loop runs on thread '" << loop.name() << "'\n";

  // Background work still pending at the end of main. What it touches must outlive main:
  // the loop is stopped after main returns (the refresh owns its counter; the announcement
  // owns itself).
  auto refreshes = forecast::watch("Oslo");
  loop.post([]() -> boost::asio::awaitable<void> {
    AnnounceUnwind announce;
    boost::asio::steady_timer forever(co_await boost::asio::this_coro::executor, std::chrono::hours(24));
    co_await forever.async_wait(boost::asio::use_awaitable);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (*refreshes < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (*refreshes < 2) return 1;
  std::cout << "returning from main with the refresh still running\n";
  return forecasts[0] == "Oslo: sunny" && forecasts[3] == "Kobe: sunny" ? 0 : 1;
}
