// SPDX-License-Identifier: MIT
#include "support/doc_section.h"

#include <fstream>

namespace tether::test {

std::vector<std::string> doc_section(const char* relative_path, const char* name) {
    std::ifstream file(std::string(TETHER_SOURCE_DIR) + "/" + relative_path);
    const std::string begin = std::string("<!-- ") + name + ":begin -->";
    const std::string end = std::string("<!-- ") + name + ":end -->";
    std::vector<std::string> lines;
    bool inside = false;
    std::string line;
    while (std::getline(file, line)) {
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) {
            line.pop_back();
        }
        if (line == begin) {
            inside = true;
        } else if (line == end) {
            return lines;
        } else if (inside) {
            lines.push_back(line);
        }
    }
    return {};
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) {
        text += line;
        text += '\n';
    }
    return text;
}

}  // namespace tether::test
