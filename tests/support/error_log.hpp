#pragma once

#include <loopbridge/loop/options.hpp>

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace loopbridge::test {

/// Collects what reaches a loop's error handler.
struct ErrorLog {
  std::mutex mutex;
  std::vector<std::string> contexts;

  ErrorHandler handler() {
    return [this](std::exception_ptr, std::string_view context) {
      std::lock_guard lock(mutex);
      contexts.emplace_back(context);
    };
  }
  bool mentions(const std::string& text) {
    std::lock_guard lock(mutex);
    for (const auto& c : contexts) {
      if (c.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

}  // namespace loopbridge::test
