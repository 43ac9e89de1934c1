// Thread names, with each system's own call: chosen by the system loopbridge is built for,
// whether or not it uses the portable fallbacks. Only the Linux branch is built and tested
// by this project; the others follow each system's manual page.

#include "platform/platform.hpp"

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#elif defined(__FreeBSD__) || defined(__OpenBSD__)
#include <pthread.h>
#include <pthread_np.h>
#endif

namespace loopbridge::detail {

void set_this_thread_os_name(const char* name) noexcept {
#if defined(__linux__)
  ::pthread_setname_np(::pthread_self(), name);
#elif defined(__APPLE__)
  // Not built here. macOS names only the calling thread, so takes no thread argument.
  ::pthread_setname_np(name);
#elif defined(__FreeBSD__) || defined(__OpenBSD__)
  // Not built here.
  ::pthread_set_name_np(::pthread_self(), name);
#else
  // Windows (SetThreadDescription, which takes UTF-16) and other systems: not yet.
  (void)name;
#endif
}

std::string_view thread_naming_call() noexcept {
#if defined(__linux__) || defined(__APPLE__)
  return "pthread_setname_np";
#elif defined(__FreeBSD__) || defined(__OpenBSD__)
  return "pthread_set_name_np";
#else
  return {};
#endif
}

}  // namespace loopbridge::detail
