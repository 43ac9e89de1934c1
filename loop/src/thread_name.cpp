#include "thread_name.hpp"

#include "platform/platform.hpp"

#include <algorithm>

namespace loopbridge::detail {
namespace {

bool is_continuation_byte(char byte) noexcept { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

// A UTF-8 character has at most 3 continuation bytes.
constexpr std::size_t kMaxContinuationBytes = 3;

}  // namespace

std::string_view utf8_prefix(std::string_view name, std::size_t max_bytes) noexcept {
  if (name.size() <= max_bytes) return name;
  // name[max_bytes] is the first byte left out: back up to the start of its character.
  std::size_t cut = max_bytes;
  for (std::size_t back = 0; back < kMaxContinuationBytes && cut > 0 && is_continuation_byte(name[cut]); ++back) --cut;
  if (is_continuation_byte(name[cut])) cut = max_bytes;  // no character starts there: not UTF-8
  return name.substr(0, cut);
}

void name_this_thread(std::string_view name) noexcept {
  char os_name[kOsThreadNameBytes + 1] = {};
  const std::string_view prefix = utf8_prefix(name, kOsThreadNameBytes);
  std::copy(prefix.begin(), prefix.end(), os_name);
  set_this_thread_os_name(os_name);
}

}  // namespace loopbridge::detail
