#pragma once

/// @file
/// loopbridge::source_location: where a submission was made, for the in-flight list, stall
/// reports and the shutdown report.

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace loopbridge {

#if defined(__cpp_lib_source_location)

/// std::source_location, where the compiler provides it (g++ 11, clang 15 and later).
using source_location = std::source_location;

#else

/// What std::source_location offers, for compilers whose standard library cannot provide
/// it (clang 14 with libstdc++ lacks `__builtin_source_location`). Same members, same use:
/// a defaulted `source_location::current()` argument records the caller's position.
class source_location {
public:
  /// The position of the call whose defaulted argument this is.
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           std::uint_least32_t line = __builtin_LINE(),
                                           std::uint_least32_t column = __builtin_COLUMN()) noexcept {
    source_location where;
    where.file_ = file;
    where.function_ = function;
    where.line_ = line;
    where.column_ = column;
    return where;
  }

  /// An empty position (no file, line 0).
  constexpr source_location() noexcept = default;
  /// The source file's name, as the compiler saw it.
  constexpr const char* file_name() const noexcept { return file_; }
  /// The enclosing function's name.
  constexpr const char* function_name() const noexcept { return function_; }
  /// The line number (1-based).
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  /// The column number (0 where the compiler does not say).
  constexpr std::uint_least32_t column() const noexcept { return column_; }

private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
  std::uint_least32_t column_ = 0;
};

#endif

}  // namespace loopbridge
