#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>

namespace loopbridge::detail {

/// The CPUs a cgroup CPU quota lets this process use, rounded up (a quota of 1.5 CPUs is 2):
/// the smallest quota on the way from the process's cgroup up to the hierarchy's root
/// (cgroup v2 `cpu.max`; v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), as a container's
/// `--cpus` sets it. nullopt without a quota. `proc_self_cgroup` and `cgroup_root` are
/// `/proc/self/cgroup` and `/sys/fs/cgroup`, except in tests.
std::optional<std::size_t> cgroup_cpu_limit(const std::filesystem::path& proc_self_cgroup = "/proc/self/cgroup",
                                            const std::filesystem::path& cgroup_root = "/sys/fs/cgroup");

}  // namespace loopbridge::detail
