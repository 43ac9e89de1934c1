// The owner: a thin face over the engine, which holds the thread and the lifecycle.

#include "loop_core.hpp"

#include "options_check.hpp"
#include "registry.hpp"
#include "thread_roles.hpp"

#include <sstream>
#include <utility>

namespace loopbridge {

using detail::LoopCore;

std::string ShutdownReport::summary() const {
  std::ostringstream out;
  out << "submitted " << submitted << ", completed " << completed << ", failed " << failed << ", cancelled "
      << cancelled << ", abandoned " << abandoned << ", rejected " << rejected << ", hook errors "
      << hook_errors.size() << ", "
      << std::chrono::duration_cast<std::chrono::microseconds>(duration).count() << " us"
      << (joined ? "" : ", thread not joined");
  return out.str();
}

BackgroundLoop::BackgroundLoop(LoopOptions options)
    : handle_(detail::LoopAccess::handle(detail::Ref<detail::Engine>::adopt(new LoopCore(std::move(options))))) {
  LoopCore::of(detail::LoopAccess::engine(handle_)).set_owner(this);
}

BackgroundLoop::BackgroundLoop(boost::asio::io_context& io, LoopOptions options)
    : handle_(detail::LoopAccess::handle(detail::Ref<detail::Engine>::adopt(new LoopCore(std::move(options), &io)))) {
  LoopCore::of(detail::LoopAccess::engine(handle_)).set_owner(this);
}

BackgroundLoop::~BackgroundLoop() {
  LoopCore& loop = LoopCore::of(detail::LoopAccess::engine(handle_));
  loop.stop_for_destructor();
  loop.set_owner(nullptr);
}

void BackgroundLoop::on_start(Hook hook) { add_hooks(std::move(hook), nullptr); }
void BackgroundLoop::on_stop(Hook hook) { add_hooks(nullptr, std::move(hook)); }
void BackgroundLoop::on_start_stop(Hook start, Hook stop) {
  if (!start || !stop) throw InvalidArgument("on_start_stop() needs both hooks");
  add_hooks(std::move(start), std::move(stop));
}

void BackgroundLoop::add_hooks(Hook start, Hook stop) {
  detail::HookEntry entry{std::move(start), std::move(stop)};
  LoopCore::of(detail::LoopAccess::engine(handle_)).add_hook(entry);
}

void BackgroundLoop::start() { LoopCore::of(detail::LoopAccess::engine(handle_)).start(); }

ShutdownReport BackgroundLoop::run_here() { return LoopCore::of(detail::LoopAccess::engine(handle_)).run_here(); }

ShutdownReport BackgroundLoop::stop(StopOptions options) {
  return LoopCore::of(detail::LoopAccess::engine(handle_)).stop(options);
}

// Out of line, like the LoopHandle calls they forward to: defined in the header, they would
// instantiate the handles' types in every file that includes it.
TaskHandle<std::size_t> BackgroundLoop::cancel_all() const { return handle_.cancel_all(); }
TaskHandle<std::vector<TaskInfo>> BackgroundLoop::in_flight() const { return handle_.in_flight(); }
LoopStats BackgroundLoop::stats() const { return handle_.stats(); }

BackgroundLoop* current_loop() noexcept {
  LoopCore* core = detail::this_thread_core();
  return core ? core->owner() : nullptr;
}

}  // namespace loopbridge
