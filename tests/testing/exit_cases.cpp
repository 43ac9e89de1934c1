// loopbridge used while the process ends: ctest checks what this program prints.
// - A thread_local of the main thread, made before loopbridge's own per-thread state and so
//   destroyed after it, calls run() from its destructor.
// - A static made before the default loop, and so destroyed after the default loop's exit
//   hook stopped it, reaches for the default loop from its destructor: it gets the stopped
//   loop (LoopStopped), not a new loop that nobody would stop.

#include <loopbridge/loopbridge.hpp>

#include <chrono>
#include <cstdio>

using namespace loopbridge;

namespace {

BackgroundLoop* g_own_loop = nullptr;  // never destroyed: still running at exit

struct FlushAtThreadExit {
  ~FlushAtThreadExit() {
    std::printf("thread exit: run gave %d\n", run(*g_own_loop, [] { return 7; }, std::chrono::seconds(5)));
    std::fflush(stdout);
  }
};

struct ReachForDefaultLoopAtExit {
  ~ReachForDefaultLoopAtExit() {
    try {
      run(default_loop(), [] { return 1; }, std::chrono::seconds(5));
      std::printf("static exit: the default loop ran a call after its exit hook\n");
    } catch (const LoopStopped&) {
      std::printf("static exit: the default loop refused with LoopStopped\n");
    } catch (const std::exception& e) {
      std::printf("static exit: unexpected error: %s\n", e.what());
    }
    std::printf("static exit: %zu loop(s) still running\n", live_loops().size());
    std::fflush(stdout);
  }
};

ReachForDefaultLoopAtExit g_reach_at_exit;  // made before the default loop's exit hook

}  // namespace

int main() {
  thread_local FlushAtThreadExit flush;  // made before loopbridge's state for this thread
  (void)flush;
  g_own_loop = new BackgroundLoop({.name = "exit-own"});
  g_own_loop->start();
  const int own = run(*g_own_loop, [] { return 1; }, std::chrono::seconds(5));
  const int from_default = run(default_loop(), [] { return 2; }, std::chrono::seconds(5));
  return own == 1 && from_default == 2 ? 0 : 1;
}
