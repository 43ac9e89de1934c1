#pragma once

#include <loopbridge/loop/options.hpp>

#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loopbridge::test {

/// Collects what reaches a loop's error handler, each as `context: message`.
struct ErrorLog {
  std::mutex mutex;
  std::vector<std::string> reports;

  ErrorHandler handler() {
    return [this](std::exception_ptr error, std::string_view context) {
      std::string report(context);
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        (report += ": ") += e.what();
      } catch (...) {
      }
      std::lock_guard lock(mutex);
      reports.push_back(std::move(report));
    };
  }
  bool mentions(const std::string& text) {
    std::lock_guard lock(mutex);
    for (const auto& report : reports) {
      if (report.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

}  // namespace loopbridge::test
