// TensorBoard event files (io/tfevents.h): CRC-32C against the published check values, the
// TFRecord framing and the hand-encoded Event protobufs byte for byte, the writer's file, and
// the files read back by TensorBoard's own reader (tests/tensorboard_reader.py; skipped where
// the tensorboard package is missing), including a SessionLog START replacing the steps an
// earlier file holds from it on.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/crc32c.h"
#include "io/tfevents.h"
#include "parallel/errors.h"
#include "tests/tensorboard_peer.h"
#include "tests/test_util.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::TempDir;

uint32_t crc_of(const std::string& s) {
  return crc32c(s.data(), s.size());
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

template <class T>
T read_le(const std::string& s, size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

// The data of every record of an event file, with both CRCs checked.
std::vector<std::string> records_of(const std::string& file) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < file.size()) {
    EXPECT_LE(at + 12, file.size());
    const uint64_t n = read_le<uint64_t>(file, at);
    EXPECT_EQ(read_le<uint32_t>(file, at + 8), mask_crc32c(crc32c(file.data() + at, 8)));
    const std::string data = file.substr(at + 12, n);
    EXPECT_EQ(read_le<uint32_t>(file, at + 12 + n), mask_crc32c(crc_of(data)));
    out.push_back(data);
    at += 16 + n;
  }
  return out;
}

TEST(Crc32c, PublishedCheckValues) {
  // The CRC catalogue's check value and the iSCSI test vectors of RFC 3720, B.4.
  EXPECT_EQ(crc_of("123456789"), 0xE3069283u);
  EXPECT_EQ(crc_of(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc_of(std::string(32, '\xff')), 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc_of(up), 0x46DD794Eu);
  EXPECT_EQ(crc_of(down), 0x113FDB5Cu);
  EXPECT_EQ(crc_of(""), 0u);
}

TEST(Crc32c, ContinuesAnEarlierResult) {
  const std::string a = "polyhead ", b = "tensorboard";
  EXPECT_EQ(crc32c(b.data(), b.size(), crc_of(a)), crc_of(a + b));
}

TEST(Crc32c, MaskRotatesAndAddsTheConstant) {
  EXPECT_EQ(mask_crc32c(0), 0xA282EAD8u);
  EXPECT_EQ(mask_crc32c(1), (1u << 17) + 0xA282EAD8u);
  EXPECT_EQ(mask_crc32c(1u << 15), 1u + 0xA282EAD8u);
}

TEST(TfEvents, RecordFraming) {
  const std::string r = tf_record("abc");
  ASSERT_EQ(r.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(read_le<uint64_t>(r, 0), 3u);
  EXPECT_EQ(read_le<uint32_t>(r, 8), mask_crc32c(crc32c(r.data(), 8)));
  EXPECT_EQ(r.substr(12, 3), "abc");
  EXPECT_EQ(read_le<uint32_t>(r, 15), mask_crc32c(crc_of("abc")));
}

TEST(TfEvents, EventBytes) {
  // wall_time 0 (field 1, fixed64), no step (0 is left out), file_version (field 3).
  EXPECT_EQ(event_file_version(0.0),
            bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x1A, 13}) + "brain.Event:2");
  // wall_time 1.5, step 300 (varint AC 02), summary (field 5) of one Value {tag "a",
  // simple_value 2.0f (field 2, fixed32)}.
  EXPECT_EQ(event_scalars(1.5, 300, {{"a", 2.0f}}),
            bytes({0x09, 0,  0,    0, 0,    0, 0,   0xF8, 0x3F, 0x10, 0xAC, 0x02,
                   0x2A, 10, 0x0A, 8, 0x0A, 1, 'a', 0x15, 0,    0,    0,    0x40}));
  // session_log (field 7) {status START = 1} at step 5.
  EXPECT_EQ(event_session_start(0.0, 5),
            bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 5, 0x3A, 2, 0x08, 1}));
}

TEST(TfEvents, WriterMakesANamedFileOfWholeRecords) {
  TempDir tmp;
  const std::string dir = tmp / "a/b";
  std::string path;
  {
    EventFileWriter w(dir, 7);
    path = w.path();
    w.write(7, {{"loss", 1.25f}, {"lr", 0.001f}});
    w.write(8, {{"loss", 1.0f}});
  }
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir));
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u) << path;
  const std::vector<std::string> r = records_of(read_file(path));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_NE(r[0].find("brain.Event:2"), std::string::npos);
  EXPECT_NE(r[1].find(bytes({0x3A, 2, 0x08, 1})), std::string::npos);  // START
  EXPECT_NE(r[2].find("loss"), std::string::npos);
  EXPECT_NE(r[2].find("lr"), std::string::npos);
  // A second writer of this process in the same second gets its own file.
  EventFileWriter again(dir, -1);
  EXPECT_NE(again.path(), path);
  EXPECT_EQ(records_of(read_file(again.path())).size(), 1u);  // no START without a restart step
}

TEST(RecordFile, AFullDeviceIsAFailureWithItsReason) {
  RecordFile f;
  f.open("/dev/full", /*create_new=*/false, "log.tensorboard");
  const RecordFile::Failure failed = f.append("a record\n");
  EXPECT_EQ(failed.why, "No space left on device");
  EXPECT_EQ(f.size(), 0u);  // only whole records count
}

TEST(RecordFile, ANewFileMustNotExist) {
  TempDir tmp;
  testing::write_file(tmp / "x", "");
  RecordFile f;
  try {
    f.open(tmp / "x", /*create_new=*/true, "log.tensorboard");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "log.tensorboard: cannot write " + (tmp / "x") + ": File exists");
  }
}

TEST(TfEvents, AnUnwritableDirectoryIsOneMessage) {
  TempDir tmp;
  testing::write_file(tmp / "file", "x");
  try {
    EventFileWriter w(tmp / "file/tb", -1);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("log.tensorboard: cannot create " + (tmp / "file/tb")),
              std::string::npos)
        << e.what();
  }
}

TEST(TfEvents, TensorBoardReadsTheFilesAndHonoursARestart) {
  const std::string missing = testing::tensorboard_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  TempDir tmp;
  const std::string dir = tmp / "tb";
  {
    EventFileWriter first(dir, 1);
    for (int step = 1; step <= 4; ++step)
      first.write(step, {{"train_loss", 10.0f + static_cast<float>(step)}, {"mfu", 0.125f}});
  }
  {
    // A run resumed from the checkpoint of step 2: steps 3 and 4 of the first file are replaced.
    EventFileWriter second(dir, 3);
    for (int step = 3; step <= 5; ++step)
      second.write(step, {{"train_loss", 0.1f * static_cast<float>(step)}});
  }
  const testing::TbRead r = testing::read_tensorboard(dir);
  ASSERT_EQ(r.run.exit_code, 0) << r.run.output;
  using Points = std::vector<std::pair<int64_t, double>>;
  EXPECT_EQ(r.scalars.at("train_loss"),
            (Points{{1, 11.0f}, {2, 12.0f}, {3, 0.3f}, {4, 0.4f}, {5, 0.5f}}))
      << r.run.output;
  EXPECT_EQ(r.scalars.at("mfu"), (Points{{1, 0.125f}, {2, 0.125f}})) << r.run.output;
}

}  // namespace
}  // namespace ph
