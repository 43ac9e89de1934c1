#pragma once

// The messages loopbridge produces, each provoked for real: what() of the errors it throws
// or settles handles with, the contexts its error handler receives, its error codes'
// messages, its cancel causes and the lines it prints.

#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/options.hpp>

#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace loopbridge::test {

/// One message, as loopbridge produced it.
struct Produced {
  /// The exception's type ("TaskCancelled"), or "context" (an error handler's context),
  /// "code" (an error code's message), "cause" (to_string(CancelCause)), "line" (printed).
  std::string kind;
  std::string text;
  /// What produced it, for the test's report.
  std::string how;
};

/// The name of a loopbridge error's most derived type; "" for any other exception.
std::string error_type_name(const std::exception& e);

/// Collects the messages the provocations produce. Safe from any thread.
class Catalogue {
public:
  /// Records what `provoke()` throws; a call that throws nothing is a miss.
  template <class F>
  void thrown(const char* how, F provoke) {
    try {
      provoke();
    } catch (...) {
      held(how, std::current_exception());
      return;
    }
    miss(how);
  }
  /// Records the error held in `error` (a handle's outcome, a hook error); null is a miss.
  void held(const char* how, std::exception_ptr error);
  /// An error handler that records each error it receives, its context, and the line the
  /// default handler would print for them.
  ErrorHandler handler(const char* how);
  /// Records a message that is no exception's (a code's, a cause's, a printed line).
  void text(std::string kind, std::string text, const char* how);
  /// Records that `how` produced nothing.
  void miss(const char* how);

  std::vector<Produced> produced() const;
  std::vector<std::string> misses() const;
  /// How many errors the handlers got so far.
  std::size_t reports() const;

private:
  mutable std::mutex mutex_;
  std::vector<Produced> produced_;
  std::vector<std::string> misses_;
  std::size_t reports_ = 0;
};

// The provocations, by area; each adds what it produced.
void provoke_argument_errors(Catalogue& catalogue);
void provoke_state_errors(Catalogue& catalogue);
void provoke_cancellations(Catalogue& catalogue);
void provoke_stop_errors(Catalogue& catalogue);
void provoke_bridge_errors(Catalogue& catalogue);
void provoke_reported_errors(Catalogue& catalogue);
void provoke_texts(Catalogue& catalogue);

/// All of them.
inline std::vector<Produced> every_message(std::vector<std::string>& misses) {
  Catalogue catalogue;
  provoke_argument_errors(catalogue);
  provoke_state_errors(catalogue);
  provoke_cancellations(catalogue);
  provoke_stop_errors(catalogue);
  provoke_bridge_errors(catalogue);
  provoke_reported_errors(catalogue);
  provoke_texts(catalogue);
  misses = catalogue.misses();
  return catalogue.produced();
}

}  // namespace loopbridge::test
