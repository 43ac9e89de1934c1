#include "alloc_injection.hpp"

#include <cstddef>
#include <cstdlib>
#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <new>

namespace {

thread_local long t_countdown = -1;  // allocations left before the failing one; -1: disarmed
thread_local bool t_fired = false;

// Where the injected failure happened (one per child process), for the report.
void* g_site[32];
int g_site_depth = 0;

// True when the armed allocation is this one.
bool injected_failure() noexcept {
  if (t_countdown >= 0 && t_countdown-- == 0) {
    t_fired = true;
    g_site_depth = ::backtrace(g_site, 32);
    return true;
  }
  return false;
}

void* aligned(std::size_t alignment, std::size_t size) noexcept {
  void* p = nullptr;
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  return ::posix_memalign(&p, alignment, size == 0 ? 1 : size) == 0 ? p : nullptr;
}

void* allocate(std::size_t size, std::size_t alignment) {
  if (injected_failure()) throw std::bad_alloc();
  void* p = alignment > alignof(std::max_align_t) ? aligned(alignment, size) : std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

/// A name without its template arguments and parameters: "ns::Class::function".
std::string short_name(const std::string& name) {
  std::string out;
  int depth = 0;
  for (char c : name) {
    if (c == '<' || c == '(') ++depth;
    if (depth == 0) out += c;
    if ((c == '>' || c == ')') && depth > 0) --depth;
  }
  return out;
}

}  // namespace

extern "C" void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  return injected_failure() ? nullptr : aligned(alignment, size);
}

void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace loopbridge::test {

FailAllocation::FailAllocation(long nth) {
  t_fired = false;
  t_countdown = nth;
}

FailAllocation::~FailAllocation() { t_countdown = -1; }

bool FailAllocation::fired() { return t_fired; }

/// The loopbridge functions on the stack of the injected failure, innermost first.
std::string failure_site() {
  std::string site;
  std::string previous;
  int kept = 0;
  for (int i = 0; i < g_site_depth && kept < 3; ++i) {
    Dl_info info{};
    if (::dladdr(g_site[i], &info) == 0 || info.dli_sname == nullptr) continue;
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    std::string name = short_name(status == 0 && demangled ? demangled : info.dli_sname);
    std::free(demangled);
    if (name.rfind("loopbridge::", 0) != 0 || name == previous) continue;
    site += (kept++ ? " < " : "") + name;
    previous = name;
  }
  return site.empty() ? "" : " [at " + site + "]";
}

}  // namespace loopbridge::test
