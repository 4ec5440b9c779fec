// TensorBoard event files, written without TensorFlow: a sequence of TFRecords
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   data (one Event protobuf) | uint32 masked CRC-32C of data
// whose Events are hand-encoded (tensorflow/core/util/event.proto and summary.proto):
//   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//           SessionLog session_log = 7; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }   (START = 1)
// A file starts with an Event whose file_version is "brain.Event:2"; TensorBoard reads every
// file of a directory whose name contains "tfevents", in name order, as one run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/record_file.h"

namespace ph {

struct TbScalar {
  std::string tag;
  float value;
};

// One TFRecord holding `data`.
std::string tf_record(const std::string& data);

// The bytes of an Event.
std::string event_file_version(double wall_time);
std::string event_scalars(double wall_time, int64_t step, const std::vector<TbScalar>& values);
// SessionLog START at `step`: TensorBoard drops the events of the run's earlier files whose step
// is `step` or later (what a run resumed from an earlier checkpoint replaces).
std::string event_session_start(double wall_time, int64_t step);

// Seconds since the Unix epoch, as an Event's wall_time.
double wall_time_now();

// Appends scalar Events to a new event file of `dir`.
class EventFileWriter {
 public:
  // Creates `dir` (and its parents) and events.out.tfevents.<unix seconds>.<host>.<pid> in it
  // (".<k>" appended when this process already made that name),
  // starting with the file-version Event and, when `restart_step` >= 0, a SessionLog START at
  // that step. Throws InputError naming the path when it cannot.
  EventFileWriter(const std::string& dir, int64_t restart_step);

  // Appends the Event of `values` at `step`, whole or not at all. Throws IoError ("cannot write
  // <path> at step N: <reason>") on failure (a full disk).
  void write(int64_t step, const std::vector<TbScalar>& values);

  const std::string& path() const { return file_.path(); }

 private:
  RecordFile file_;
};

}  // namespace ph
