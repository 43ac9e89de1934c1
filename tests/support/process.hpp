#pragma once

// What a process holds, read from /proc/self: threads, open descriptors, resident memory.
// No Catch2 here: the soak and fuzz programs use it too.

#include <cstddef>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <string_view>
#include <unistd.h>

namespace loopbridge::test {

/// Entries in a /proc directory, "." and ".." left out.
inline std::size_t count_entries(const char* path) {
  std::size_t n = 0;
  if (DIR* dir = ::opendir(path)) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ++n;
    }
    ::closedir(dir);
  }
  return n;
}

/// Threads of this process (/proc/self/task).
inline std::size_t thread_count() { return count_entries("/proc/self/task"); }

/// Open descriptors of this process (/proc/self/fd), not counting the one that reads it.
inline std::size_t fd_count() { return count_entries("/proc/self/fd") - 1; }

/// Resident memory in bytes (/proc/self/statm, second field).
inline std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

/// Whether this build runs under AddressSanitizer or ThreadSanitizer, which change what
/// memory figures mean (shadow memory, quarantine) and how fast things run.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif
inline constexpr bool kSanitized = kThreadSanitizer || kAddressSanitizer;

/// Whether this process runs under valgrind (which preloads its own libraries), where
/// resident memory is valgrind's, not the program's.
inline bool under_valgrind() {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::string_view(preload).find("vgpreload") != std::string_view::npos;
}

}  // namespace loopbridge::test
