// Checks that every C++ block in the guides is code that is compiled and run, and that it
// shows what a reader must include to paste it.
//
// Each ```cpp block of README.md and docs/**/*.md begins with its head: the #include lines
// its code needs (at least one), and the using-declarations and namespace aliases it relies
// on. The rest of the block, or the whole block, must equal, line for line (indentation
// aside), a region of a source file under examples/ or tests/ that lies between two
// `//! [name]` lines (Doxygen's snippet markers), and every line of the head must be a line
// of that file. Those sources are built and run by ctest, so a guide cannot show code that
// does not compile, no longer does what it says, or needs a header it does not name.
//
// Usage: check_doc_snippets <repository root>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using Lines = std::vector<std::string>;

std::string trim_right(std::string line) {
  line.erase(line.find_last_not_of(" \t\r") + 1);
  return line;
}

std::string trim(const std::string& line) {
  std::string right = trim_right(line);
  return right.substr(std::min(right.size(), right.find_first_not_of(" \t")));
}

/// The lines without their common indentation, trailing blanks, or blank lines at either end.
Lines normalised(Lines lines) {
  for (auto& line : lines) line = trim_right(line);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  while (!lines.empty() && lines.front().empty()) lines.erase(lines.begin());
  std::size_t indent = std::string::npos;
  for (const auto& line : lines) {
    if (!line.empty()) indent = std::min(indent, line.find_first_not_of(' '));
  }
  for (auto& line : lines) line = line.empty() ? line : line.substr(indent);
  return lines;
}

Lines read_lines(const fs::path& file) {
  std::ifstream in(file);
  Lines lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// The region name of a `//! [name]` marker line, or empty.
std::string marker_name(const std::string& line) {
  std::string text = trim(line);
  if (text.rfind("//! [", 0) != 0 || text.back() != ']') return {};
  return text.substr(5, text.size() - 6);
}

struct Region {
  std::string where;
  fs::path file;
  Lines lines;
};

/// Adds the marked regions of `file` to `regions`; false (with a message) for an unclosed one.
bool collect_regions(const fs::path& file, const fs::path& root, std::vector<Region>& regions) {
  Lines lines = read_lines(file);
  std::map<std::string, std::size_t> open;  // name -> index in `regions`
  for (std::size_t n = 0; n < lines.size(); ++n) {
    if (std::string name = marker_name(lines[n]); !name.empty()) {
      if (auto it = open.find(name); it != open.end()) {
        regions[it->second].lines = normalised(regions[it->second].lines);
        open.erase(it);
      } else {
        open[name] = regions.size();
        regions.push_back({fs::relative(file, root).string() + ":" + std::to_string(n + 1), file, {}});
      }
      continue;
    }
    for (const auto& [name, index] : open) regions[index].lines.push_back(lines[n]);
  }
  for (const auto& [name, index] : open) {
    std::cerr << regions[index].where << ": snippet [" << name << "] is never closed\n";
  }
  return open.empty();
}

struct Block {
  std::string where;
  Lines head;  // the includes and using-declarations a reader pastes above the code
  Lines body;  // the code
  Lines lines;  // both
};

/// Whether a line of a block belongs to its head: an #include, a using-directive or
/// -declaration, a namespace alias.
bool is_head_line(const std::string& line) {
  const std::string text = trim(line);
  return text.rfind("#include ", 0) == 0 || text.rfind("using ", 0) == 0 ||
         (text.rfind("namespace ", 0) == 0 && text.find(" = ") != std::string::npos);
}

std::vector<Block> cpp_blocks(const fs::path& file, const fs::path& root) {
  Lines lines = read_lines(file);
  std::vector<Block> blocks;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    if (trim(lines[n]) != "```cpp") continue;
    Block block{fs::relative(file, root).string() + ":" + std::to_string(n + 1), {}, {}, {}};
    for (++n; n < lines.size() && trim(lines[n]) != "```"; ++n) block.lines.push_back(lines[n]);
    block.lines = normalised(block.lines);
    std::size_t body = 0;
    while (body < block.lines.size() && (block.lines[body].empty() || is_head_line(block.lines[body]))) ++body;
    for (std::size_t i = 0; i < body; ++i) {
      if (!block.lines[i].empty()) block.head.push_back(trim(block.lines[i]));
    }
    block.body = normalised(Lines(block.lines.begin() + static_cast<std::ptrdiff_t>(body), block.lines.end()));
    blocks.push_back(std::move(block));
  }
  return blocks;
}

/// The lines of `file`, trimmed, to look a block's head up in.
const std::set<std::string>& lines_of(const fs::path& file) {
  static std::map<fs::path, std::set<std::string>> cache;
  auto [it, inserted] = cache.try_emplace(file);
  if (inserted) {
    for (const auto& line : read_lines(file)) it->second.insert(trim(line));
  }
  return it->second;
}

/// The lines of `head` that `file` does not have.
Lines missing_from(const Lines& head, const fs::path& file) {
  Lines missing;
  for (const auto& line : head) {
    if (lines_of(file).count(line) == 0) missing.push_back(line);
  }
  return missing;
}

bool shows_an_include(const Block& block) {
  return std::any_of(block.head.begin(), block.head.end(), [](const std::string& line) { return line.rfind("#include ", 0) == 0; });
}

/// Checks one block against the compiled regions; prints what is wrong.
bool check_block(const Block& block, const std::vector<Region>& regions) {
  auto print = [](const Lines& lines) {
    for (const auto& line : lines) std::cerr << "    " << line << "\n";
  };
  if (!shows_an_include(block)) {
    std::cerr << block.where << ": this C++ block shows no #include: begin it with the includes its code needs\n";
    print(block.lines);
    return false;
  }
  const Region* compiled = nullptr;  // a region the block shows, whose file has its head
  const Region* without_head = nullptr;  // one whose file lacks some of the head
  for (const auto& region : regions) {
    if (region.lines != block.lines && region.lines != block.body) continue;
    if (missing_from(block.head, region.file).empty()) {
      compiled = &region;
      break;
    }
    without_head = &region;
  }
  if (compiled != nullptr) return true;
  if (without_head != nullptr) {
    std::cerr << block.where << ": the code is " << without_head->where
              << ", but that file lacks these lines of the block's head:\n";
    print(missing_from(block.head, without_head->file));
    return false;
  }
  std::cerr << block.where << ": this C++ block matches no `//! [name]` region under examples/ or tests/:\n";
  print(block.lines);
  return false;
}

std::vector<fs::path> files_under(const fs::path& folder, const std::vector<std::string>& extensions) {
  std::vector<fs::path> files;
  if (!fs::exists(folder)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    const auto extension = entry.path().extension().string();
    if (entry.is_regular_file() && std::find(extensions.begin(), extensions.end(), extension) != extensions.end()) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: check_doc_snippets <repository root>\n";
    return 2;
  }
  const fs::path root = fs::canonical(argv[1]);

  bool ok = true;
  std::vector<Region> regions;
  for (const char* folder : {"examples", "tests"}) {
    for (const auto& file : files_under(root / folder, {".cpp", ".hpp"})) ok = collect_regions(file, root, regions) && ok;
  }

  std::vector<fs::path> guides = files_under(root / "docs", {".md"});
  guides.insert(guides.begin(), root / "README.md");
  std::size_t checked = 0;
  for (const auto& guide : guides) {
    for (const auto& block : cpp_blocks(guide, root)) {
      ++checked;
      ok = check_block(block, regions) && ok;
    }
  }
  std::cout << checked << " C++ blocks checked against " << regions.size() << " compiled regions\n";
  return ok ? 0 : 1;
}
