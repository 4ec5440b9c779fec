// A file that grows by whole records (metrics.jsonl, TensorBoard event files): a record is
// appended whole or not at all. A short write is continued until it completes or fails with
// its reason (a full disk); on failure the file is cut back to the records before it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ph {

class RecordFile {
 public:
  RecordFile() = default;
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

  // Opens `path` for appending; `create_new`: it must not exist yet and is created, else it must
  // exist. Throws InputError("<key>: cannot write <path>: <reason>") on failure, `key` naming the
  // config key that chose the place (run.dir, log.tensorboard).
  void open(const std::string& path, bool create_new, const std::string& key);

  struct Failure {
    std::string why;   // empty: the record was written
    bool cut = false;  // the file was cut back to its whole records
  };
  // Appends `record`.
  Failure append(std::string_view record);

  const std::string& path() const { return path_; }
  uint64_t size() const { return bytes_; }  // whole records only

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
};

}  // namespace ph
