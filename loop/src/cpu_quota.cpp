#include "cpu_quota.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace loopbridge::detail {
namespace {

namespace fs = std::filesystem;

// "max 100000" (no quota) or "<quota> <period>", in microseconds.
std::optional<double> read_cpu_max(const fs::path& dir) {
  std::ifstream in(dir / "cpu.max");
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return std::nullopt;
  try {
    const double q = std::stod(quota);
    return q > 0 ? std::optional<double>(q / period) : std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
}

// cpu.cfs_quota_us is -1 without a quota.
std::optional<double> read_cfs_quota(const fs::path& dir) {
  std::ifstream quota_in(dir / "cpu.cfs_quota_us");
  std::ifstream period_in(dir / "cpu.cfs_period_us");
  double quota = 0, period = 0;
  if (!(quota_in >> quota) || !(period_in >> period) || quota <= 0 || period <= 0) return std::nullopt;
  return quota / period;
}

// The smallest quota from `mount`/`cgroup` up to `mount`. Inside a cgroup namespace the
// process's path need not exist under the mount (the mount is its cgroup): the levels that
// do not exist have no files, and the mount's own count.
template <class Read>
std::optional<double> smallest_on_path(const fs::path& mount, const std::string& cgroup, Read read) {
  std::error_code ec;
  if (!fs::is_directory(mount, ec)) return std::nullopt;
  const fs::path top = mount.lexically_normal();
  fs::path dir = (top / fs::path(cgroup).relative_path()).lexically_normal();
  std::optional<double> smallest;
  for (;;) {
    if (auto quota = read(dir); quota && (!smallest || *quota < *smallest)) smallest = quota;
    if (dir == top || dir.string().size() <= top.string().size() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return smallest;
}

bool lists_cpu_controller(const std::string& controllers) {
  std::istringstream list(controllers);
  for (std::string name; std::getline(list, name, ',');) {
    if (name == "cpu") return true;
  }
  return false;
}

}  // namespace

std::optional<std::size_t> cgroup_cpu_limit(const fs::path& proc_self_cgroup, const fs::path& cgroup_root) {
  std::ifstream in(proc_self_cgroup);
  std::optional<double> limit;
  auto take = [&](std::optional<double> quota) {
    if (quota && (!limit || *quota < *limit)) limit = quota;
  };
  // Lines are "<id>:<controllers>:<path>"; v2's is "0::<path>".
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string cgroup = line.substr(second + 1);
    if (line.compare(0, first, "0") == 0 && controllers.empty()) {
      take(smallest_on_path(cgroup_root, cgroup, read_cpu_max));
    } else if (lists_cpu_controller(controllers)) {
      for (const char* mount : {"cpu,cpuacct", "cpuacct,cpu", "cpu"}) {
        take(smallest_on_path(cgroup_root / mount, cgroup, read_cfs_quota));
      }
    }
  }
  if (!limit) return std::nullopt;
  return std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(*limit - 1e-9)));
}

}  // namespace loopbridge::detail
