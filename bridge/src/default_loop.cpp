#include <loopbridge/bridge/default_loop.hpp>

#include <loopbridge/loop/detail/task_state.hpp>

#include <cstdlib>
#include <mutex>
#include <optional>

namespace loopbridge {
namespace {

struct DefaultLoop {
  std::mutex mutex;
  LoopFactory factory;
  std::unique_ptr<BackgroundLoop> loop;
  bool exit_hook_installed = false;
  // Once the exit hook ran, no loop is made (nobody would stop it): exit-time callers get
  // the stopped one, whose submissions settle LoopStopped.
  bool exited = false;
  std::optional<LoopHandle> stopped_at_exit;
};

// Never destroyed: it must outlive every static object whose destructor might still use
// the default loop, and the exit hook below does the stopping.
DefaultLoop& state() {
  static DefaultLoop* instance = new DefaultLoop;
  return *instance;
}

std::unique_ptr<BackgroundLoop> make_default() {
  return std::make_unique<BackgroundLoop>(LoopOptions{.name = "lb-default"});
}

void stop_at_exit() noexcept {
  DefaultLoop& s = state();
  std::unique_ptr<BackgroundLoop> loop;
  {
    std::lock_guard lock(s.mutex);
    s.exited = true;
    loop = std::move(s.loop);
    if (loop) s.stopped_at_exit = loop->handle();
  }
  if (!loop) return;
  if (detail::this_thread_core() != nullptr) {
    // exit() called from a loop thread: joining here would wait on ourselves (or on a loop
    // that may wait on us). Ask for the stop and let the process end around it.
    loop->request_stop();
    (void)loop.release();
    return;
  }
  loop.reset();  // the destructor stops with its own deadlines and joins
}

}  // namespace

LoopHandle default_loop() {
  DefaultLoop& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.loop) {
    if (s.exited) {
      if (s.stopped_at_exit) return *s.stopped_at_exit;
      throw LoopStopped("the default loop was stopped at exit");
    }
    std::unique_ptr<BackgroundLoop> loop = s.factory ? s.factory() : make_default();
    if (!loop) throw InvalidState("the default loop factory returned no loop");
    if (loop->state() == LoopState::created) loop->start();
    s.loop = std::move(loop);
    if (!s.exit_hook_installed) {
      // Registered after the loop's first creation, so it runs before the destructors of
      // the static objects that existed by then.
      std::atexit(stop_at_exit);
      s.exit_hook_installed = true;
    }
  }
  return s.loop->handle();
}

void set_default_loop_factory(LoopFactory factory) {
  DefaultLoop& s = state();
  std::lock_guard lock(s.mutex);
  s.factory = std::move(factory);
}

ShutdownReport reset_default_loop(StopOptions options) {
  detail::check_may_block("reset_default_loop");
  DefaultLoop& s = state();
  std::unique_ptr<BackgroundLoop> loop;
  {
    std::lock_guard lock(s.mutex);
    loop = std::move(s.loop);
  }
  if (!loop) return {};
  return loop->stop(options);
}

}  // namespace loopbridge
