#include <loopbridge/bridge/default_loop.hpp>

#include "loop_core.hpp"
#include "thread_roles.hpp"

#include <loopbridge/loop/detail/task_state.hpp>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>
#include <vector>

namespace loopbridge {
namespace {

struct DefaultLoop {
  // Guards what follows; never held while a factory, a start or a stop runs: those may call
  // back into default_loop() (an on_start hook of the default loop, say).
  std::mutex mutex;
  std::condition_variable made;
  LoopFactory factory;
  std::unique_ptr<BackgroundLoop> loop;
  // The thread making the loop (its factory, then its start), while one does.
  std::optional<std::thread::id> maker;
  bool exit_hook_installed = false;
  // Once the exit hook ran, no loop is made (nobody would stop it): exit-time callers get
  // the stopped one, whose submissions settle LoopStopped.
  bool exited = false;
  std::optional<LoopHandle> stopped_at_exit;
  // A loop let go at exit on a thread that could not join it: alive (and reachable) for good.
  std::vector<std::unique_ptr<BackgroundLoop>> let_go_at_exit;
};

DefaultLoop& state();

// fork(): held across it, so that the child finds the state whole. In the child the loop
// (if any) is dead, as every loop the parent started; a making under way in the parent is
// not, there: its thread was not copied.
void lock_for_fork() noexcept { state().mutex.lock(); }
void unlock_after_fork() noexcept { state().mutex.unlock(); }
void unlock_in_fork_child() noexcept {
  state().maker.reset();
  state().mutex.unlock();
}

// Never destroyed: it must outlive every static object whose destructor might still use
// the default loop, and the exit hook below does the stopping.
DefaultLoop& state() {
  static DefaultLoop* instance = [] {
    auto* made = new DefaultLoop;
    ::pthread_atfork(lock_for_fork, unlock_after_fork, unlock_in_fork_child);
    return made;
  }();
  return *instance;
}

std::unique_ptr<BackgroundLoop> make_default() {
  return std::make_unique<BackgroundLoop>(LoopOptions{.name = "lb-default"});
}

/// Stops a loop that is no longer the default, on a thread that may be a loop thread.
void stop_released(std::unique_ptr<BackgroundLoop> loop) noexcept {
  if (!loop) return;
  if (detail::this_thread_core() != nullptr || detail::this_thread_work_owner() != nullptr) {
    // exit() called from a loop thread (or a worker): joining here would wait on ourselves,
    // or on a loop that may wait on us. Ask for the stop and let the process end around it.
    detail::LoopCore::of(detail::LoopAccess::engine(*loop)).let_go_at_exit();
    DefaultLoop& s = state();
    std::lock_guard lock(s.mutex);
    try {
      s.let_go_at_exit.push_back(std::move(loop));
    } catch (...) {
      (void)loop.release();  // out of memory: never destroyed either
    }
    return;
  }
  loop.reset();  // the destructor stops with its own deadlines and joins
}

void stop_at_exit() noexcept {
  DefaultLoop& s = state();
  std::unique_ptr<BackgroundLoop> loop;
  {
    std::lock_guard lock(s.mutex);
    s.exited = true;
    loop = std::move(s.loop);
    if (loop) s.stopped_at_exit = loop->handle();
    s.made.notify_all();
  }
  stop_released(std::move(loop));
}

}  // namespace

LoopHandle default_loop() {
  DefaultLoop& s = state();
  std::unique_lock lock(s.mutex);
  for (;;) {
    if (s.loop) return s.loop->handle();
    if (s.exited) {
      if (s.stopped_at_exit) return *s.stopped_at_exit;
      throw LoopStopped("the default loop was stopped at exit");
    }
    if (!s.maker) break;
    // Another call is making it. Waiting is right for any other host thread; this thread
    // may be the one the making waits for.
    if (*s.maker == std::this_thread::get_id() || detail::this_thread_core() != nullptr ||
        detail::this_thread_work_owner() != nullptr) {
      throw InvalidState(
          "default_loop() called while the default loop is being made, from a thread its making waits for (its "
          "factory, an on_start hook, a loop thread, a to_thread worker)");
    }
    s.made.wait(lock);
  }
  s.maker = std::this_thread::get_id();
  const LoopFactory factory = s.factory;
  lock.unlock();

  std::unique_ptr<BackgroundLoop> loop;
  std::exception_ptr failed;
  try {
    loop = factory ? factory() : make_default();
    if (!loop) throw InvalidState("the default loop factory returned no loop");
    if (loop->state() == LoopState::created) loop->start();
  } catch (...) {
    failed = std::current_exception();
  }

  lock.lock();
  s.maker.reset();
  s.made.notify_all();
  if (failed) {
    lock.unlock();
    loop.reset();  // a loop whose start failed is stopped already: no wait
    std::rethrow_exception(failed);
  }
  if (s.exited) {
    // The process began to exit while the loop was made: nobody would stop it later.
    LoopHandle handle = loop->handle();
    lock.unlock();
    stop_released(std::move(loop));
    return handle;
  }
  s.loop = std::move(loop);
  if (!s.exit_hook_installed) {
    // Registered after the loop's first creation, so it runs before the destructors of
    // the static objects that existed by then.
    std::atexit(stop_at_exit);
    s.exit_hook_installed = true;
  }
  return s.loop->handle();
}

void set_default_loop_factory(LoopFactory factory) {
  DefaultLoop& s = state();
  {
    std::lock_guard lock(s.mutex);
    std::swap(s.factory, factory);
  }
  // The old factory (and its captures) goes here, after the unlock.
}

ShutdownReport reset_default_loop(StopOptions options) {
  detail::check_may_block("reset_default_loop()");
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
