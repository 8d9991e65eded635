// SPDX-License-Identifier: MIT
// A private directory under $TMPDIR (or /tmp) for tests that need real files;
// removed, with every file the test made in it, when the object goes away.
#pragma once

#include <string>
#include <vector>

namespace tether::test {

class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }

    /// The path of `name` inside the directory; remembered for removal (as a
    /// file, or as an empty directory when the test made one there).
    std::string file(const std::string& name);

    /// Creates (or replaces) `name` with `contents`; returns its path.
    std::string write_file(const std::string& name, const std::string& contents);

  private:
    std::string path_;
    std::vector<std::string> files_;
};

}  // namespace tether::test
