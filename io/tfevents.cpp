#include "io/tfevents.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/crc32c.h"
#include "parallel/errors.h"

namespace ph {

namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, uint32_t field, uint32_t wire) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | wire);
}

template <class T>
void put_little_endian(std::string& out, T v) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86 and every CUDA host are little-endian
  out.append(reinterpret_cast<const char*>(b), sizeof(T));
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_tag(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event fields 1 and 2.
std::string event_head(double wall_time, int64_t step) {
  std::string e;
  put_tag(e, 1, kFixed64);
  put_little_endian(e, wall_time);
  if (step != 0) {  // proto3: a zero scalar is left out
    put_tag(e, 2, kVarint);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

}  // namespace

std::string tf_record(const std::string& data) {
  std::string r;
  const uint64_t length = data.size();
  put_little_endian(r, length);
  put_little_endian(r, mask_crc32c(crc32c(r.data(), 8)));
  r += data;
  put_little_endian(r, mask_crc32c(crc32c(data.data(), data.size())));
  return r;
}

std::string event_file_version(double wall_time) {
  std::string e = event_head(wall_time, 0);
  put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string event_scalars(double wall_time, int64_t step, const std::vector<TbScalar>& values) {
  std::string summary;
  for (const TbScalar& s : values) {
    std::string v;
    put_bytes(v, 1, s.tag);
    put_tag(v, 2, kFixed32);
    put_little_endian(v, s.value);
    put_bytes(summary, 1, v);
  }
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

std::string event_session_start(double wall_time, int64_t step) {
  std::string log;
  put_tag(log, 1, kVarint);
  put_varint(log, 1);  // SessionLog.START
  std::string e = event_head(wall_time, step);
  put_bytes(e, 7, log);
  return e;
}

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

EventFileWriter::EventFileWriter(const std::string& dir, int64_t restart_step) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError("log.tensorboard: cannot create " + dir + ": " + ec.message());
  char host[256] = "localhost";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  const double now = wall_time_now();
  const std::string base = dir + "/events.out.tfevents." +
                           std::to_string(static_cast<long long>(std::floor(now))) + "." + host +
                           "." + std::to_string(::getpid());
  // A second file of this process in the same second gets ".1" (sorted after the first), ...
  std::string path = base;
  for (int k = 1; std::filesystem::exists(path); ++k) path = base + "." + std::to_string(k);
  file_.open(path, /*create_new=*/true, "log.tensorboard");
  std::string head = tf_record(event_file_version(now));
  if (restart_step >= 0) head += tf_record(event_session_start(now, restart_step));
  const RecordFile::Failure f = file_.append(head);
  if (!f.why.empty()) throw InputError("log.tensorboard: cannot write " + path + ": " + f.why);
}

void EventFileWriter::write(int64_t step, const std::vector<TbScalar>& values) {
  const RecordFile::Failure f =
      file_.append(tf_record(event_scalars(wall_time_now(), step, values)));
  if (!f.why.empty())
    throw IoError("cannot write " + path() + " at step " + std::to_string(step) + ": " + f.why +
                  (f.cut ? "" : "; its last record may be cut short"));
}

}  // namespace ph
