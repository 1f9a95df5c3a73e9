// write_file_atomic: the target is replaced whole or not at all, and no temp file is left behind.
#include "nn/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace graft::nn {
namespace {

namespace fs = std::filesystem;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("graft_atomic_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Every name in the directory: the test expects exactly the files it wrote.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

TEST_F(AtomicFile, CreatesTheFile) {
  const std::string bytes("binary\0data\xff", 12);
  write_file_atomic(dir_ / "out.bin", bytes);
  EXPECT_EQ(read(dir_ / "out.bin"), bytes);
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicFile, ReplacesTheTarget) {
  write_file_atomic(dir_ / "out.bin", "old contents, longer than the new ones");
  write_file_atomic(dir_ / "out.bin", "new");
  EXPECT_EQ(read(dir_ / "out.bin"), "new");
  write_file_atomic(dir_ / "out.bin", "");
  EXPECT_EQ(read(dir_ / "out.bin"), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicFile, WritesLargeBuffersWhole) {
  std::string bytes(24u << 20, '\0');  // 24 MiB: more than one write() may take
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 2654435761u >> 13);
  write_file_atomic(dir_ / "big.bin", bytes);
  EXPECT_EQ(read(dir_ / "big.bin"), bytes);
}

TEST_F(AtomicFile, CrashBeforeRenameKeepsTheOldFile) {
  write_file_atomic(dir_ / "ckpt.bin", "last good checkpoint");
  try {
    write_file_atomic(dir_ / "ckpt.bin", "half-finished", AtomicWriteOptions{.fail_before_rename = true});
    ADD_FAILURE() << "no IOError";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "ckpt.bin").string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(read(dir_ / "ckpt.bin"), "last good checkpoint");
  EXPECT_EQ(listing(), std::vector<std::string>{"ckpt.bin"});
}

TEST_F(AtomicFile, CrashBeforeRenameOfANewFileLeavesNothing) {
  EXPECT_THROW(write_file_atomic(dir_ / "new.bin", "x", AtomicWriteOptions{.fail_before_rename = true}), IOError);
  EXPECT_TRUE(listing().empty());
}

TEST_F(AtomicFile, MissingDirectoryThrowsIOErrorNamingThePath) {
  const fs::path path = dir_ / "no" / "such" / "dir" / "out.bin";
  try {
    write_file_atomic(path, "x");
    ADD_FAILURE() << "no IOError";
  } catch (const IOError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(AtomicFile, TargetThatIsADirectoryFailsAndCleansUp) {
  fs::create_directories(dir_ / "taken" / "child");
  EXPECT_THROW(write_file_atomic(dir_ / "taken", "x"), IOError);
  EXPECT_EQ(listing(), std::vector<std::string>{"taken"});
  EXPECT_TRUE(fs::is_directory(dir_ / "taken" / "child"));
}

TEST_F(AtomicFile, RejectsAPathWithoutAFileName) {
  EXPECT_THROW(write_file_atomic("", "x"), IOError);
  EXPECT_THROW(write_file_atomic(dir_ / "", "x"), IOError);
}

TEST_F(AtomicFile, RelativePathWritesIntoTheCurrentDirectory) {
  const fs::path previous = fs::current_path();
  fs::current_path(dir_);
  write_file_atomic("relative.bin", "here");
  fs::current_path(previous);
  EXPECT_EQ(read(dir_ / "relative.bin"), "here");
  EXPECT_EQ(listing(), std::vector<std::string>{"relative.bin"});
}

}  // namespace
}  // namespace graft::nn
