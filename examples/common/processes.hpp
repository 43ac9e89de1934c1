#pragma once

// Small helpers of the examples that run real clients: the calling thread's name (which
// thread served a request), and a client program's output.

#include <pthread.h>

#include <cstdio>
#include <string>

namespace examples {

/// The name of the calling thread (a loop's threads carry the loop's name).
inline std::string this_thread_name() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

/// Runs a shell command (a client such as curl) and returns what it printed, or "" when it
/// failed.
inline std::string run_client(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char chunk[256];
  while (std::fgets(chunk, sizeof chunk, pipe) != nullptr) output += chunk;
  return ::pclose(pipe) == 0 ? output : "";
}

}  // namespace examples
