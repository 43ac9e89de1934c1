#include "catalogue.hpp"

#include "reporting.hpp"

#include <mutex>
#include <typeinfo>
#include <utility>

namespace loopbridge::test {

std::string error_type_name(const std::exception& e) {
  const std::type_info& type = typeid(e);
  if (type == typeid(TaskCancelled)) return "TaskCancelled";
  if (type == typeid(LoopStopped)) return "LoopStopped";
  if (type == typeid(TaskAbandoned)) return "TaskAbandoned";
  if (type == typeid(DeadlockError)) return "DeadlockError";
  if (type == typeid(InvalidHandle)) return "InvalidHandle";
  if (type == typeid(InvalidState)) return "InvalidState";
  if (type == typeid(InvalidArgument)) return "InvalidArgument";
  if (type == typeid(Timeout)) return "Timeout";
  if (type == typeid(HostNotWaiting)) return "HostNotWaiting";
  if (type == typeid(QueueFull)) return "QueueFull";
  if (type == typeid(BackendUnavailable)) return "BackendUnavailable";
  if (type == typeid(Error)) return "Error";
  return "";
}

void Catalogue::held(const char* how, std::exception_ptr error) {
  if (!error) {
    miss(how);
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    const std::string type = error_type_name(e);
    if (type.empty()) {
      miss(how);  // not loopbridge's
      return;
    }
    text(type, e.what(), how);
  }
}

ErrorHandler Catalogue::handler(const char* how) {
  return [this, how](std::exception_ptr error, std::string_view context) {
    std::string what = "a non-standard exception";
    bool ours = false;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
      ours = !error_type_name(e).empty();
    } catch (...) {
    }
    if (ours) held(how, error);
    text("context", std::string(context), how);
    text("report", std::string(context) + ": " + what, how);
    text("line", detail::unhandled_error_line("app", context, what), how);
    std::lock_guard lock(mutex_);
    ++reports_;
  };
}

void Catalogue::text(std::string kind, std::string text, const char* how) {
  std::lock_guard lock(mutex_);
  produced_.push_back({std::move(kind), std::move(text), how});
}

void Catalogue::miss(const char* how) {
  std::lock_guard lock(mutex_);
  misses_.emplace_back(how);
}

std::vector<Produced> Catalogue::produced() const {
  std::lock_guard lock(mutex_);
  return produced_;
}

std::vector<std::string> Catalogue::misses() const {
  std::lock_guard lock(mutex_);
  return misses_;
}

std::size_t Catalogue::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

}  // namespace loopbridge::test
