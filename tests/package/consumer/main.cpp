// Built against the installed package, as a user would.
#include <loopbridge/loopbridge.hpp>

#include <iostream>

int main() {
  loopbridge::BackgroundLoop loop({.name = "consumer"});
  loop.start();
  auto value = loopbridge::to_std_future(loop.submit([]() -> boost::asio::awaitable<int> { co_return 42; }));
  if (value.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return 1;
  int result = value.get();
  std::cout << "consumer got " << result << "; " << loop.stop().summary() << "\n";
  return result == 42 ? 0 : 1;
}
