#include "in_flight.hpp"

#include <algorithm>

namespace loopbridge::detail {

void InFlight::link(TaskBase& task) noexcept {
  task.start_seq = ++next_seq_;
  task.prev_in_flight = tail_;
  task.next_in_flight = nullptr;
  (tail_ ? tail_->next_in_flight : head_) = &task;
  tail_ = &task;
}

void InFlight::unlink(TaskBase& task) noexcept {
  (task.prev_in_flight ? task.prev_in_flight->next_in_flight : head_) = task.next_in_flight;
  (task.next_in_flight ? task.next_in_flight->prev_in_flight : tail_) = task.prev_in_flight;
  task.prev_in_flight = task.next_in_flight = nullptr;
}

std::size_t InFlight::count() const noexcept {
  std::size_t count = 0;
  for (const TaskBase* task = head_; task != nullptr; task = task->next_in_flight) ++count;
  return count;
}

void InFlight::watch(CancelAllState& group, std::size_t cancelled) noexcept {
  group.cancelled = cancelled;
  group.remaining = count();  // those that ended while the signals went out are gone
  group.last_seq = next_seq_;
  if (group.remaining == 0) {
    group.set_value(cancelled);
    return;
  }
  try {
    groups_.push_back(Ref<CancelAllState>::share(&group));
  } catch (...) {
    group.set_value(cancelled);  // out of memory: settled at once, before its tasks unwound
  }
}

void InFlight::task_left(const TaskBase& task) noexcept {
  for (std::size_t i = 0; i < groups_.size();) {
    CancelAllState& group = *groups_[i];
    if (task.start_seq <= group.last_seq && --group.remaining == 0) {
      group.set_value(group.cancelled);
      groups_.erase(groups_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void InFlight::settle_groups() noexcept {
  for (auto& group : groups_) group->set_value(group->cancelled);
  groups_.clear();
}

TaskInfo InFlight::describe(const TaskBase& task, std::chrono::steady_clock::time_point now) {
  TaskInfo info;
  info.name = task.label.name.view();
  info.where = task.label.where;
  info.age = std::chrono::duration_cast<std::chrono::nanoseconds>(now - task.label.submitted_at);
  info.phase = task.stage() == TaskStage::cancel_delivered ? TaskPhase::cancelling : TaskPhase::running;
  info.id = task.start_seq;
  return info;
}

std::vector<TaskInfo> InFlight::snapshot(std::chrono::steady_clock::time_point now) const {
  std::vector<TaskInfo> list;
  for (const TaskBase* task = head_; task != nullptr; task = task->next_in_flight) list.push_back(describe(*task, now));
  return list;
}

}  // namespace loopbridge::detail

namespace loopbridge {

std::string TaskInfo::to_string() const {
  std::string line = name.empty() ? std::string("(unnamed)") : name;
  line += " (";
  line += where.file_name();
  line += ':';
  line += std::to_string(where.line());
  line += ", age ";
  line += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(age).count());
  line += " ms, ";
  line += phase == TaskPhase::running ? "running" : "cancelling";
  line += ')';
  return line;
}

}  // namespace loopbridge
