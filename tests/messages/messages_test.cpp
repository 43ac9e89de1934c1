#include "catalogue.hpp"

#include <catch2/catch.hpp>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// Words that carry no meaning of their own: a message may use them as often as it needs.
bool is_filler(const std::string& word) {
  static const std::set<std::string> filler = {"a",    "an",  "the", "is",   "are",  "was", "were", "be",  "been",
                                               "of",   "to",  "by",  "in",   "on",   "at",  "it",   "its", "this",
                                               "that", "and", "or",  "for",  "with", "from", "as",  "has", "have",
                                               "not",  "no",  "s",   "one",  "so",   "than", "there"};
  return filler.count(word) > 0;
}

// A word reduced to its stem, so that "stopped", "stopping" and "stops" are one word.
std::string stem(std::string word) {
  for (const char* suffix : {"ing", "ed", "s"}) {
    const std::string end(suffix);
    if (word.size() > end.size() + 2 && word.compare(word.size() - end.size(), end.size(), end) == 0) {
      word.resize(word.size() - end.size());
      break;
    }
  }
  if (word.size() > 3 && word[word.size() - 1] == word[word.size() - 2]) word.pop_back();  // stopp -> stop
  return word;
}

// The words of `text` that carry meaning, stemmed and lowercased.
std::vector<std::string> meaningful_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && !is_filler(word)) words.push_back(stem(word));
    word.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      flush();
    }
  }
  flush();
  return words;
}

// A pair of meaningful words that `text` says twice ("loop stopped: the loop is stopped"),
// or "" when it says each thing once.
std::string repeated_phrase(const std::string& text) {
  const auto words = meaningful_words(text);
  std::set<std::string> seen;
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string pair = words[i] + " " + words[i + 1];
    if (!seen.insert(pair).second) return pair;
  }
  return "";
}

}  // namespace

TEST_CASE("the repetition check finds a message that says a thing twice", "[messages]") {
  CHECK(repeated_phrase("submission refused: the loop is stopped: loop stopped") == "loop stop");
  CHECK(repeated_phrase("task cancelled: task cancelled") == "task cancel");
  CHECK(repeated_phrase("submission refused: the loop is stopping or stopped").empty());
}

TEST_CASE("each message loopbridge produces, provoked one by one, says each thing once", "[messages]") {
  std::vector<std::string> misses;
  const std::vector<Produced> produced = every_message(misses);
  for (const auto& how : misses) {
    INFO("provoked, but produced nothing of loopbridge's: " << how);
    CHECK(misses.empty());
  }
  std::map<std::string, std::size_t> by_kind;
  for (const Produced& message : produced) {
    ++by_kind[message.kind];
    INFO(message.kind << " from " << message.how << ": " << message.text);
    CHECK_FALSE(message.text.empty());
    CHECK(repeated_phrase(message.text).empty());
  }
  // Every kind of message was reached: each error type, the handler's contexts and lines.
  for (const char* kind : {"TaskCancelled", "LoopStopped", "TaskAbandoned", "DeadlockError", "InvalidHandle", "InvalidState",
                           "InvalidArgument", "Timeout", "HostNotWaiting", "QueueFull", "context", "report", "line",
                           "code", "cause"}) {
    INFO(kind);
    CHECK(by_kind[kind] > 0);
  }
}

TEST_CASE("every message text in loopbridge's sources says each thing once", "[messages]") {
  // Listed from the sources by message_literals.py: each error's text and each error
  // handler context, whether or not a test provokes it.
  std::ifstream list(LOOPBRIDGE_MESSAGE_LITERALS);
  REQUIRE(list);
  std::size_t count = 0;
  for (std::string text; std::getline(list, text); ++count) {
    INFO(text);
    CHECK(repeated_phrase(text).empty());
  }
  CHECK(count > 50);  // the listing found the messages, not a few stray strings
}
