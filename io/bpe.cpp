#include "io/bpe.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/bpe_files.h"
#include "io/bpe_merge.h"
#include "io/bpe_piece_cache.h"
#include "io/bpe_token_index.h"
#include "io/config.h"
#include "io/pretokenizer.h"
#include "parallel/errors.h"

namespace ph {

namespace {

constexpr int kCacheSlotsLog2 = 16;     // 65,536 pieces, 4 MiB per thread
constexpr size_t kMinChunk = 1 << 20;   // parallel encoding cuts chunks of at least this
constexpr size_t kChunksPerThread = 4;  // for balance

std::atomic<uint64_t> next_tokenizer_uid{1};

std::string read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  if (f) ss << f.rdbuf();
  if (!f || f.bad()) {
    throw InputError("tokenizer '" + path + "': cannot read: " + std::strerror(errno));
  }
  return ss.str();
}

void write_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr;
  if (ok) ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (ok) ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const int err = errno;
  if (f != nullptr && std::fclose(f) != 0 && ok) ok = false;
  if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) return;
  const int failure = ok ? errno : err;
  std::remove(tmp.c_str());
  throw IoError("cannot write tokenizer file '" + path + "': " + std::strerror(failure));
}

// Each thread's cache, emptied when the thread encodes with another tokenizer.
BpePieceCache& thread_cache(uint64_t tokenizer_uid) {
  struct Owned {
    uint64_t owner = 0;
    BpePieceCache cache{kCacheSlotsLog2};
  };
  thread_local Owned owned;
  if (owned.owner != tokenizer_uid) {
    if (owned.owner != 0) owned.cache.clear();
    owned.owner = tokenizer_uid;
  }
  return owned.cache;
}

}  // namespace

struct BpeTokenizer::Impl {
  Impl(BpeFormat f, std::string vocab, std::string merges, BpeVocab v)
      : format(f),
        vocab_text(std::move(vocab)),
        merges_text(std::move(merges)),
        tokens(std::move(v.tokens)),
        byte_ids(v.byte_ids),
        whole_piece_tokens(v.whole_piece_tokens),
        merger(v),
        uid(next_tokenizer_uid.fetch_add(1)),
        ids(tokens) {}

  // The tokens of one piece (h = piece_hash(piece)), uncached.
  void encode_piece(std::string_view piece, uint64_t h, std::vector<int32_t>& out) const {
    if (whole_piece_tokens > 0) {
      const int32_t id = ids.find(piece, h);
      if (id >= 0 && id < whole_piece_tokens) {
        out.push_back(id);
        return;
      }
    }
    merger.merge(piece, out);
  }

  void encode_into(std::string_view text, std::vector<int32_t>& out) const {
    BpePieceCache& cache = thread_cache(uid);
    // Pieces are cut one ahead, so that the next piece's cache slot is fetched from memory
    // while this one is encoded.
    size_t begin = 0;
    const auto cut = [&](std::string_view& piece, uint64_t& h) {
      const size_t end = gpt2_piece_end(text, begin);
      piece = text.substr(begin, end - begin);
      begin = end;
      h = piece.size() > 1 ? piece_hash(piece) : 0;
      if (piece.size() > 1) cache.prefetch(h);
    };
    std::string_view next;
    uint64_t next_hash = 0;
    if (begin < text.size()) cut(next, next_hash);
    while (!next.empty()) {
      const std::string_view piece = next;
      const uint64_t h = next_hash;
      next = {};
      if (begin < text.size()) cut(next, next_hash);
      if (piece.size() == 1) {
        out.push_back(byte_ids[static_cast<uint8_t>(piece[0])]);
      } else if (piece.size() <= BpePieceCache::kMaxBytes) {
        if (cache.find(piece, h, out)) continue;
        const size_t before = out.size();
        encode_piece(piece, h, out);
        cache.insert(piece, h, out.data() + before, out.size() - before);
      } else {
        encode_piece(piece, h, out);
      }
    }
  }

  BpeFormat format;
  std::string vocab_text;
  std::string merges_text;
  std::vector<std::string> tokens;
  std::array<int32_t, 256> byte_ids;
  int32_t whole_piece_tokens;
  BpeMerger merger;
  uint64_t uid;       // names this tokenizer to the threads' caches
  BpeTokenIndex ids;  // token bytes -> lowest id
};

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw InputError("tokenizer '" + path + "': no such file or directory");
    throw InputError("tokenizer '" + path + "': cannot open: " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return from_text(BpeFormat::TiktokenRanks, read_whole(path), "", path);
  }
  for (const char* name : {"vocab.json", "merges.txt"}) {
    if (::stat((path + "/" + name).c_str(), &st) != 0) {
      throw InputError("tokenizer '" + path + "': a directory needs vocab.json and merges.txt; " +
                       name + " is missing");
    }
  }
  return from_text(BpeFormat::VocabMerges, read_whole(path + "/vocab.json"),
                   read_whole(path + "/merges.txt"), path);
}

BpeTokenizer BpeTokenizer::from_text(BpeFormat format, const std::string& vocab,
                                     const std::string& merges, const std::string& origin) {
  BpeVocab v = format == BpeFormat::VocabMerges ? parse_vocab_merges(vocab, merges, origin)
                                                : parse_tiktoken_ranks(vocab, origin);
  return BpeTokenizer(std::make_unique<Impl>(format, vocab, merges, std::move(v)));
}

BpeFormat BpeTokenizer::format() const {
  return impl_->format;
}

int BpeTokenizer::size() const {
  return static_cast<int>(impl_->tokens.size());
}

std::optional<int32_t> BpeTokenizer::id_of(std::string_view token_bytes) const {
  const int32_t id = impl_->ids.find(token_bytes, piece_hash(token_bytes));
  if (id < 0) return std::nullopt;
  return id;
}

const std::string& BpeTokenizer::token_bytes(int32_t id) const {
  return impl_->tokens.at(static_cast<size_t>(id));
}

void BpeTokenizer::encode_into(std::string_view text, std::vector<int32_t>& out) const {
  impl_->encode_into(text, out);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, int threads) const {
  std::vector<int32_t> out;
  if (threads <= 1 || text.size() < 2 * kMinChunk) {
    out.reserve(text.size() / 3);
    impl_->encode_into(text, out);
    return out;
  }
  const size_t target =
      std::max(kMinChunk, text.size() / (static_cast<size_t>(threads) * kChunksPerThread));
  std::vector<size_t> cuts{0};
  while (cuts.back() < text.size()) cuts.push_back(gpt2_safe_split(text, cuts.back() + target));
  const size_t chunks = cuts.size() - 1;
  std::vector<std::vector<int32_t>> parts(chunks);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (size_t c = 0; c < chunks; ++c) {
    const std::string_view chunk = text.substr(cuts[c], cuts[c + 1] - cuts[c]);
    parts[c].reserve(chunk.size() / 3);
    impl_->encode_into(chunk, parts[c]);
  }
  size_t total = 0;
  for (const auto& p : parts) total += p.size();
  out.reserve(total);
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string BpeTokenizer::decode(const int32_t* ids, size_t n) const {
  const auto& tokens = impl_->tokens;
  std::string out;
  size_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    bytes += ids[i] >= 0 && static_cast<size_t>(ids[i]) < tokens.size()
                 ? tokens[static_cast<size_t>(ids[i])].size()
                 : 12;
  }
  out.reserve(bytes);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] >= 0 && static_cast<size_t>(ids[i]) < tokens.size()) {
      out += tokens[static_cast<size_t>(ids[i])];
    } else {
      out += '<';
      out += std::to_string(ids[i]);
      out += '>';
    }
  }
  return out;
}

const std::string& BpeTokenizer::vocab_text() const {
  return impl_->vocab_text;
}
const std::string& BpeTokenizer::merges_text() const {
  return impl_->merges_text;
}

void BpeTokenizer::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create directory '" + dir + "': " + ec.message());
  if (impl_->format == BpeFormat::VocabMerges) {
    write_atomic(dir + "/vocab.json", impl_->vocab_text);
    write_atomic(dir + "/merges.txt", impl_->merges_text);
  } else {
    write_atomic(dir + "/gpt2.tiktoken", impl_->vocab_text);
  }
}

}  // namespace ph
