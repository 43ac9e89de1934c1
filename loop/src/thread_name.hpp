#pragma once

#include <cstddef>
#include <string_view>

namespace loopbridge::detail {

/// The most bytes of a thread name the system keeps (Linux: 16 with the terminating NUL).
inline constexpr std::size_t kOsThreadNameBytes = 15;

/// The longest prefix of `name` of at most `max_bytes` bytes that does not end inside a
/// UTF-8 character. Bytes that are not UTF-8 are cut anywhere.
std::string_view utf8_prefix(std::string_view name, std::size_t max_bytes) noexcept;

/// Names the calling thread `name`, cut to what the system keeps (utf8_prefix).
void name_this_thread(std::string_view name) noexcept;

}  // namespace loopbridge::detail
