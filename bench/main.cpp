// loopbridge against hand-rolled Asio, measured side by side in one process: every metric
// runs its variants in alternating blocks so that they see the same machine state, and
// writes each block's figure to JSON. bench/run.sh runs this with the Tokio and Python
// programs and turns the results into docs/benchmarks.md.

#include "harness.hpp"

#include <chrono>
#include <cstdio>
#include <map>

int main(int argc, char** argv) {
  using namespace loopbridge::bench;
  const Options options = parse_options(argc, argv);
  init_cpus();
  const std::map<std::string, void (*)(const Options&, Results&)> groups{
      {"latency", latency}, {"throughput", throughput}, {"lifecycle", lifecycle}, {"memory", memory}, {"pool", pool}};
  Results results;
  for (const auto& group : options.groups) {
    auto it = groups.find(group);
    if (it == groups.end()) {
      std::fprintf(stderr, "loopbridge_bench: unknown group %s\n", group.c_str());
      return 2;
    }
    auto t = Clock::now();
    it->second(options, results);
    std::fprintf(stderr, "loopbridge_bench: %s done in %.1f s\n", group.c_str(), seconds_since(t));
  }
  results.write_json(options);
  return 0;
}
