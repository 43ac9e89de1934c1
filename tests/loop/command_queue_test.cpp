// CommandQueue, the engine's multi-producer, single-consumer queue of commands: what a push
// answers, the order the consumer takes commands in, closing, and the depth it reports.

#include "command_queue.hpp"

#include "support/deadline.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

using loopbridge::detail::Command;
using loopbridge::detail::CommandQueue;
using PushResult = loopbridge::detail::CommandQueue::PushResult;

namespace {

/// A command that only says who pushed it and in what order; the queue never runs it.
struct NumberedCommand final : Command {
  int producer = 0;
  int index = 0;
  void execute(loopbridge::detail::Engine&) noexcept override {}
  void discard(loopbridge::detail::Engine&) noexcept override {}
};

/// The commands of a list linked by next_in_queue, first to last.
std::vector<NumberedCommand*> in_order(Command* first) {
  std::vector<NumberedCommand*> commands;
  for (Command* c = first; c != nullptr; c = c->next_in_queue) commands.push_back(static_cast<NumberedCommand*>(c));
  return commands;
}

}  // namespace

TEST_CASE("a push into an empty queue is the first and later pushes ride on it", "[command-queue]") {
  CommandQueue queue;
  NumberedCommand a, b, c, d;
  CHECK_FALSE(queue.has_commands());
  CHECK(queue.push(a) == PushResult::pushed_first);  // the caller wakes the consumer
  CHECK(queue.has_commands());
  CHECK(queue.push(b) == PushResult::pushed);  // a wake-up is already on its way
  CHECK(queue.push(c) == PushResult::pushed);
  CHECK(in_order(queue.take_all()) == std::vector<NumberedCommand*>{&a, &b, &c});
  CHECK(queue.push(d) == PushResult::pushed_first);  // empty again
  CHECK(in_order(queue.take_all()) == std::vector<NumberedCommand*>{&d});
}

TEST_CASE("take_all takes every command oldest first and leaves the queue empty", "[command-queue]") {
  CommandQueue queue;
  CHECK(queue.take_all() == nullptr);
  std::vector<NumberedCommand> commands(100);
  for (auto& command : commands) queue.push(command);
  const auto taken = in_order(queue.take_all());
  REQUIRE(taken.size() == commands.size());
  for (std::size_t i = 0; i < taken.size(); ++i) CHECK(taken[i] == &commands[i]);
  CHECK_FALSE(queue.has_commands());
  CHECK(queue.take_all() == nullptr);
}

TEST_CASE("close returns what was left oldest first and refuses every later push", "[command-queue][stop]") {
  CommandQueue queue;
  NumberedCommand a, b, late;
  queue.push(a);
  queue.push(b);
  CHECK_FALSE(queue.closed());
  CHECK(in_order(queue.close()) == std::vector<NumberedCommand*>{&a, &b});
  CHECK(queue.closed());
  CHECK_FALSE(queue.has_commands());
  CHECK(queue.push(late) == PushResult::closed);
  CHECK(late.next_in_queue == nullptr);  // untouched: the caller still owns it
  CHECK(queue.take_all() == nullptr);
  CHECK(queue.close() == nullptr);  // a second close finds nothing
  CHECK(queue.closed());
}

TEST_CASE("closing an empty queue returns nothing and refuses later pushes", "[command-queue][stop]") {
  CommandQueue queue;
  NumberedCommand late;
  CHECK(queue.close() == nullptr);
  CHECK(queue.push(late) == PushResult::closed);
  CHECK(queue.depth() == 0);
}

TEST_CASE("the depth counts commands pushed and not yet started", "[command-queue]") {
  CommandQueue queue;
  NumberedCommand a, b, c, refused;
  CHECK(queue.depth() == 0);
  queue.push(a);
  queue.push(b);
  queue.push(c);
  CHECK(queue.depth() == 3);
  Command* batch = queue.take_all();
  CHECK(queue.depth() == 3);  // taken, not started
  for (Command* command = batch; command != nullptr; command = command->next_in_queue) {
    queue.ran_one();
    CHECK(queue.depth() == static_cast<std::size_t>(in_order(command->next_in_queue).size()));
  }
  CHECK(queue.depth() == 0);
  queue.push(a);
  (void)queue.close();
  CHECK(queue.push(refused) == PushResult::closed);
  CHECK(queue.depth() == 1);  // a refused push is not counted
}

TEST_CASE("several producers and one consumer: nothing is lost and each producer's order is kept",
          "[command-queue][threads]") {
  constexpr int kProducers = 4;
  constexpr int kEach = 20'000;
  CommandQueue queue;
  std::vector<std::vector<NumberedCommand>> commands(kProducers, std::vector<NumberedCommand>(kEach));
  std::atomic<int> first_pushes{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        NumberedCommand& command = commands[static_cast<std::size_t>(p)][static_cast<std::size_t>(i)];
        command.producer = p;
        command.index = i;
        if (queue.push(command) == PushResult::pushed_first) ++first_pushes;
      }
    });
  }
  // The consumer: takes batches until it has every command (or the deadline passes: a lost
  // command), and checks each producer's order.
  std::vector<int> next_index(kProducers, 0);
  int received = 0, out_of_order = 0, batches = 0;
  const auto deadline = std::chrono::steady_clock::now() + loopbridge::test::kDeadline;
  while (received < kProducers * kEach && std::chrono::steady_clock::now() < deadline) {
    Command* batch = queue.take_all();
    if (batch == nullptr) {
      std::this_thread::yield();
      continue;
    }
    ++batches;
    for (NumberedCommand* command : in_order(batch)) {
      auto& expected = next_index[static_cast<std::size_t>(command->producer)];
      if (command->index != expected) ++out_of_order;
      expected = command->index + 1;
      ++received;
      queue.ran_one();
    }
  }
  for (auto& producer : producers) producer.join();
  CHECK(out_of_order == 0);
  CHECK(received == kProducers * kEach);
  CHECK(queue.depth() == 0);
  CHECK(queue.take_all() == nullptr);
  // Every batch began with the one push that found the queue empty: that push's wake-up is
  // the one the consumer answered.
  CHECK(first_pushes.load() == batches);
}

TEST_CASE("a close racing producers: every command is taken, returned by the close, or refused",
          "[command-queue][threads][stop]") {
  constexpr int kProducers = 4;
  constexpr int kEach = 20'000;
  CommandQueue queue;
  std::vector<std::vector<NumberedCommand>> commands(kProducers, std::vector<NumberedCommand>(kEach));
  std::atomic<int> refused{0};
  std::atomic<int> pushed{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (auto& command : commands[static_cast<std::size_t>(p)]) {
        if (queue.push(command) == PushResult::closed) {
          ++refused;
        } else {
          ++pushed;
        }
      }
    });
  }
  std::size_t taken = 0;
  while (pushed.load() < kProducers * kEach / 2) taken += in_order(queue.take_all()).size();
  const std::size_t left = in_order(queue.close()).size();
  for (auto& producer : producers) producer.join();
  CHECK(queue.take_all() == nullptr);
  CHECK(taken + left == static_cast<std::size_t>(pushed.load()));
  CHECK(pushed.load() + refused.load() == kProducers * kEach);
}
