#include "io/corpus_pieces.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "io/config.h"
#include "io/fork_join.h"
#include "io/pretokenizer.h"
#include "parallel/errors.h"

namespace ph {

namespace {

// The widest code point: a split point p is usable only when the code point at p is whole in
// the buffer (whether it is white space decides whether p is a piece boundary).
constexpr size_t kMaxCodePoint = 4;

struct File {
  int fd = -1;
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  File(File&& o) noexcept : fd(o.fd) { o.fd = -1; }
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

std::string input_error(const std::string& command, const std::string& path,
                        const std::string& what) {
  return command + ": input '" + printable(path) + "': " + what;
}

File open_input(const std::string& path, const std::string& command) {
  File f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0)
    throw InputError(
        input_error(command, path, "cannot open: " + std::string(std::strerror(errno))));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    throw InputError(
        input_error(command, path, "cannot open: " + std::string(std::strerror(errno))));
  }
  if (!S_ISREG(st.st_mode)) throw InputError(input_error(command, path, "not a regular file"));
  return f;
}

// A usable split point of text (a prefix of the file that continues past it) at or after
// `from`, or 0 when there is none.
size_t split_at_or_after(std::string_view text, size_t from) {
  const size_t p = gpt2_safe_split(text, from);
  return p + kMaxCodePoint <= text.size() ? p : 0;
}

// A usable split point near the end of text: the first in its last quarter, else the last one
// before; 0 when there is none.
size_t last_split(std::string_view text) {
  if (const size_t p = split_at_or_after(text, text.size() - text.size() / 4); p > 0) return p;
  size_t last = 0;
  for (size_t p = split_at_or_after(text, 1); p > 0; p = split_at_or_after(text, p + 1)) last = p;
  return last;
}

}  // namespace

PieceCounts count_corpus_pieces(const std::vector<std::string>& paths, int threads,
                                size_t block_bytes, const std::string& command,
                                CorpusPieceStats* stats) {
  std::vector<File> files;
  files.reserve(paths.size());
  for (const std::string& path : paths) files.push_back(open_input(path, command));

  ForkJoin team(threads);
  const size_t T = static_cast<size_t>(team.threads());
  const size_t round_bytes = std::max<size_t>(T * std::max<size_t>(block_bytes, 1), 64);
  std::vector<PieceCounts> counts(T);
  std::vector<uint64_t> pieces(T, 0);
  std::vector<size_t> bounds(T + 1);
  CorpusPieceStats total;
  std::string buf;

  for (size_t f = 0; f < files.size(); ++f) {
    size_t len = 0;
    bool eof = false;
    size_t want = round_bytes;
    while (true) {
      if (buf.size() < want) buf.resize(want);
      while (len < want && !eof) {
        const ssize_t n = ::read(files[f].fd, buf.data() + len, want - len);
        if (n < 0) {
          if (errno == EINTR) continue;
          throw InputError(
              input_error(command, paths[f], "cannot read: " + std::string(std::strerror(errno))));
        }
        if (n == 0) eof = true;
        len += static_cast<size_t>(n);
        total.bytes += static_cast<uint64_t>(n);
      }
      if (len == 0) break;
      const std::string_view text(buf.data(), len);
      const size_t cut = eof ? len : last_split(text);
      if (cut == 0) {  // no piece is sure to begin in the buffer: read more
        want = 2 * len;
        continue;
      }
      bounds[0] = 0;
      bounds[T] = cut;
      for (size_t t = 1; t < T; ++t) {
        bounds[t] = std::max(bounds[t - 1], std::min(gpt2_safe_split(text, cut * t / T), cut));
      }
      team.run([&](int thread) {
        const size_t t = static_cast<size_t>(thread);
        PieceCounts& mine = counts[t];
        uint64_t n = 0;
        for (size_t pos = bounds[t], end = bounds[t + 1]; pos < end; ++n) {
          const size_t next = gpt2_piece_end(text, pos);
          mine.add(text.substr(pos, next - pos));
          pos = next;
        }
        pieces[t] += n;
      });
      if (eof) break;
      std::memmove(buf.data(), buf.data() + cut, len - cut);
      len -= cut;
      want = std::max(round_bytes, 2 * len);
    }
  }
  for (size_t t = 1; t < T; ++t) {
    counts[0].add_all(counts[t]);
    counts[t] = PieceCounts();
  }
  for (const uint64_t n : pieces) total.pieces += n;
  if (stats) *stats = total;
  return std::move(counts[0]);
}

}  // namespace ph
