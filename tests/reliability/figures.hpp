#pragma once

// Figures the reliability tests publish: with LOOPBRIDGE_RELIABILITY_LOG set to a file,
// each test appends "area|figure|value" lines to it, which tests/reliability/report.sh
// turns into docs/reliability.md. Without it, nothing is written.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>

namespace loopbridge::test {

inline void record_figure(std::string_view area, std::string_view figure, std::uint64_t value) {
  const char* path = std::getenv("LOOPBRIDGE_RELIABILITY_LOG");
  if (path == nullptr || *path == '\0') return;
  if (std::FILE* log = std::fopen(path, "a")) {
    std::fprintf(log, "%.*s|%.*s|%llu\n", static_cast<int>(area.size()), area.data(), static_cast<int>(figure.size()),
                 figure.data(), static_cast<unsigned long long>(value));
    std::fclose(log);
  }
}

/// A seed from LOOPBRIDGE_SEED, or from the clock; printed either way so a failure can be
/// replayed.
inline std::uint64_t chosen_seed(const char* what) {
  std::uint64_t seed = 0;
  if (const char* env = std::getenv("LOOPBRIDGE_SEED"); env != nullptr && *env != '\0') {
    seed = std::strtoull(env, nullptr, 10);
  } else {
    seed = std::random_device{}();
  }
  std::printf("%s: seed %llu (replay with LOOPBRIDGE_SEED=%llu)\n", what, static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

}  // namespace loopbridge::test
