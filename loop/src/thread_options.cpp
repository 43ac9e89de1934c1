// The loop's own thread: its name, CPUs, stack and the on_thread_start hook.

#include "loop_core.hpp"
#include "platform/platform.hpp"
#include "thread_name.hpp"

#include <unistd.h>

#include <algorithm>
#include <string>

namespace loopbridge::detail {
namespace {

constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;

std::size_t min_stack_size() {
  const long system_min = ::sysconf(_SC_THREAD_STACK_MIN);
  return std::max<std::size_t>(64 * 1024, system_min > 0 ? static_cast<std::size_t>(system_min) : 0);
}

}  // namespace

void check_thread_options(const LoopOptions& options) {
  if (options.cpu_affinity.empty() && options.stack_size == 0) return;  // no system reads for the common case
  const std::size_t present = present_cpus();
  for (unsigned cpu : options.cpu_affinity) {
    if (cpu >= present) {
      throw InvalidArgument("cpu_affinity: CPU " + std::to_string(cpu) +
                            " does not exist (this machine has CPUs 0 to " + std::to_string(present - 1) + ")");
    }
  }
  const std::size_t stack = options.stack_size;
  if (stack != 0 && (stack < min_stack_size() || stack > kMaxStackSize)) {
    throw InvalidArgument("stack_size " + std::to_string(stack) + " is out of range: 0 (the system's default) or " +
                          std::to_string(min_stack_size()) + " to " + std::to_string(kMaxStackSize) + " bytes");
  }
}

SystemThread LoopCore::create_own_thread() {
  Ref<LoopCore> keep = Ref<LoopCore>::share(this);
  return SystemThread([keep]() noexcept { keep->thread_main(LoopThread::own); }, options_.stack_size);
}

void LoopCore::check_runs_on_caller() const {
  if (!options_.cpu_affinity.empty() || options_.stack_size != 0 || options_.on_thread_start) {
    throw InvalidArgument(
        "cpu_affinity, stack_size and on_thread_start set up a thread the loop creates; run_here() runs on the "
        "calling thread: set that thread up before the call");
  }
}

std::exception_ptr LoopCore::set_up_own_thread() noexcept {
  // By the thread itself: naming another thread writes to /proc, and costs more than
  // start() saves by not waiting for the thread to run.
  name_this_thread(options_.name);
  try {
    if (!options_.cpu_affinity.empty()) pin_this_thread(options_.cpu_affinity);
    if (options_.on_thread_start) options_.on_thread_start();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

}  // namespace loopbridge::detail
