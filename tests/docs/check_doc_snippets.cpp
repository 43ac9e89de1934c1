// Checks that every C++ block in the guides is code that is compiled and run.
//
// Each ```cpp block of README.md and docs/**/*.md must equal, line for line (indentation
// aside), a region of a source file under examples/ or tests/ that lies between two
// `//! [name]` lines (Doxygen's snippet markers). Those sources are built and run by ctest,
// so a guide cannot show code that does not compile or no longer does what it says.
//
// Usage: check_doc_snippets <repository root> [guide to leave out]...
// (a guide left out is named by its path from the root, e.g. docs/operations.md)

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
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
        regions.push_back({fs::relative(file, root).string() + ":" + std::to_string(n + 1), {}});
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
  Lines lines;
};

std::vector<Block> cpp_blocks(const fs::path& file, const fs::path& root) {
  Lines lines = read_lines(file);
  std::vector<Block> blocks;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    if (trim(lines[n]) != "```cpp") continue;
    Block block{fs::relative(file, root).string() + ":" + std::to_string(n + 1), {}};
    for (++n; n < lines.size() && trim(lines[n]) != "```"; ++n) block.lines.push_back(lines[n]);
    block.lines = normalised(block.lines);
    blocks.push_back(std::move(block));
  }
  return blocks;
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
  if (argc < 2) {
    std::cerr << "usage: check_doc_snippets <repository root> [guide to leave out]...\n";
    return 2;
  }
  const fs::path root = fs::canonical(argv[1]);
  const std::vector<std::string> left_out(argv + 2, argv + argc);

  bool ok = true;
  std::vector<Region> regions;
  for (const char* folder : {"examples", "tests"}) {
    for (const auto& file : files_under(root / folder, {".cpp", ".hpp"})) ok = collect_regions(file, root, regions) && ok;
  }

  std::vector<fs::path> guides = files_under(root / "docs", {".md"});
  guides.insert(guides.begin(), root / "README.md");
  std::size_t checked = 0;
  for (const auto& guide : guides) {
    const std::string name = fs::relative(guide, root).string();
    if (std::find(left_out.begin(), left_out.end(), name) != left_out.end()) {
      std::cout << name << ": left out, its C++ blocks are not checked\n";
      continue;
    }
    for (const auto& block : cpp_blocks(guide, root)) {
      ++checked;
      auto same = [&](const Region& region) { return region.lines == block.lines; };
      if (std::any_of(regions.begin(), regions.end(), same)) continue;
      ok = false;
      std::cerr << block.where << ": this C++ block matches no `//! [name]` region under examples/ or tests/:\n";
      for (const auto& line : block.lines) std::cerr << "    " << line << "\n";
    }
  }
  std::cout << checked << " C++ blocks checked against " << regions.size() << " compiled regions\n";
  return ok ? 0 : 1;
}
