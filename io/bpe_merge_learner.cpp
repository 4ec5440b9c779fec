#include "io/bpe_merge_learner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "io/fork_join.h"

// How it works. Pair counts live in a hash table (pair -> dense index) with, per pair, its count
// and the list of words it was seen in (a word is listed when the pair is first counted in it or
// created in it by a merge; a listed word may no longer hold the pair). A max-heap orders the
// pairs by (count, tie-break); its entries are checked when they reach the top and re-pushed
// with the current count when it fell (counts fall lazily, rises push a new entry). A merge
// visits only the words listed for its pair, rewrites them in place and turns the change of
// each word into count deltas of the pairs around each occurrence; large merges split their
// words over the threads, each thread summing its deltas in a small local table that is then
// applied in thread order, so the result does not depend on the thread count.

namespace ph {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kEmptyKey = std::numeric_limits<uint64_t>::max();
// A merge whose word list is at least this long is split over the threads.
constexpr uint32_t kParallelWords = 4096;
// Pair flags: it merged (and is listed), it would make a reserved string.
constexpr uint8_t kMerged = 1, kBanned = 2;

inline uint64_t pair_key(uint32_t a, uint32_t b) {
  return (uint64_t{a} << 32) | b;
}
inline uint32_t key_left(uint64_t k) {
  return static_cast<uint32_t>(k >> 32);
}
inline uint32_t key_right(uint64_t k) {
  return static_cast<uint32_t>(k);
}
inline uint64_t key_hash(uint64_t k) {
  k *= 0x9E3779B97F4A7C15ULL;
  return k ^ (k >> 31);
}

// Pair key -> dense pair index (open addressing, linear probing, at most half full).
class PairIndex {
 public:
  PairIndex() { resize(1u << 16); }

  uint32_t find_or_insert(uint64_t key, uint32_t next_index) {
    if (2 * (size_ + 1) > keys_.size()) resize(2 * keys_.size());
    size_t slot = key_hash(key) & mask_;
    while (keys_[slot] != kEmptyKey) {
      if (keys_[slot] == key) return values_[slot];
      slot = (slot + 1) & mask_;
    }
    keys_[slot] = key;
    values_[slot] = next_index;
    ++size_;
    return next_index;
  }

 private:
  void resize(size_t capacity) {
    std::vector<uint64_t> old_keys(capacity, kEmptyKey);
    std::vector<uint32_t> old_values(capacity);
    old_keys.swap(keys_);
    old_values.swap(values_);
    mask_ = capacity - 1;
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] == kEmptyKey) continue;
      size_t slot = key_hash(old_keys[i]) & mask_;
      while (keys_[slot] != kEmptyKey) slot = (slot + 1) & mask_;
      keys_[slot] = old_keys[i];
      values_[slot] = old_values[i];
    }
  }

  std::vector<uint64_t> keys_;
  std::vector<uint32_t> values_;
  size_t mask_ = 0, size_ = 0;
};

// Lists of word ids, one per pair, as chains of chunks in an arena of fixed-size blocks (no
// reallocation, no copy). A chunk is [next, used, size class, ids...] with 2 << class ids;
// chunks of released lists are reused.
class WordLists {
 public:
  struct List {
    uint32_t head = kNone, tail = kNone, size = 0;
  };

  void append(List& list, uint32_t word) {
    if (list.tail == kNone) {
      list.head = list.tail = allocate(0);
    } else if (at(list.tail + 1) == capacity(at(list.tail + 2))) {
      const uint32_t chunk = allocate(std::min(at(list.tail + 2) + 1, kMaxClass));
      at(list.tail) = chunk;
      list.tail = chunk;
    }
    uint32_t& used = at(list.tail + 1);
    at(list.tail + kHeader + used) = word;
    ++used;
    ++list.size;
  }

  // Appends `word` unless it is the last word of the list.
  void append_new(List& list, uint32_t word) {
    if (list.tail != kNone && at(list.tail + kHeader + at(list.tail + 1) - 1) == word) return;
    append(list, word);
  }

  template <class Fn>
  void for_each(const List& list, Fn&& fn) const {
    for (uint32_t c = list.head; c != kNone; c = at(c)) {
      const uint32_t* ids = &at(c + kHeader);
      for (uint32_t i = 0, n = at(c + 1); i < n; ++i) fn(ids[i]);
    }
  }

  void release(List& list) {
    for (uint32_t c = list.head; c != kNone;) {
      const uint32_t next = at(c);
      at(c) = free_[at(c + 2)];
      free_[at(c + 2)] = c;
      c = next;
    }
    list = List{};
  }

 private:
  static constexpr uint32_t kHeader = 3, kMaxClass = 10;
  static constexpr uint32_t kBlockBits = 20, kBlock = 1u << kBlockBits;  // 4 MiB blocks
  static uint32_t capacity(uint32_t cls) { return 2u << cls; }

  uint32_t& at(uint32_t i) { return blocks_[i >> kBlockBits][i & (kBlock - 1)]; }
  const uint32_t& at(uint32_t i) const { return blocks_[i >> kBlockBits][i & (kBlock - 1)]; }

  uint32_t allocate(uint32_t cls) {
    uint32_t chunk = free_[cls];
    if (chunk != kNone) {
      free_[cls] = at(chunk);
    } else {
      const uint32_t need = kHeader + capacity(cls);
      if (blocks_.empty() || used_ + need > kBlock) {  // a chunk never spans two blocks
        if (blocks_.size() + 1 >= (size_t{1} << (32 - kBlockBits))) {
          throw std::length_error("BPE training: the pair index outgrew 16 GiB");
        }
        blocks_.push_back(std::make_unique<uint32_t[]>(kBlock));
        used_ = 0;
      }
      chunk = static_cast<uint32_t>(((blocks_.size() - 1) << kBlockBits) + used_);
      used_ += need;
    }
    at(chunk) = kNone;
    at(chunk + 1) = 0;
    at(chunk + 2) = cls;
    return chunk;
  }

  std::vector<std::unique_ptr<uint32_t[]>> blocks_;
  uint32_t used_ = 0;  // of the last block
  uint32_t free_[kMaxClass + 1] = {kNone, kNone, kNone, kNone, kNone, kNone,
                                   kNone, kNone, kNone, kNone, kNone};
};

// One thread's count changes during one step: pair -> summed delta, and the words to list under
// each pair (each word once per pair), in the order they were first touched.
class LocalDeltas {
 public:
  struct Entry {
    uint64_t key;
    int64_t delta;
    uint32_t last_word, head, tail;
    uint32_t slot;  // where the table points at it
  };
  struct Append {
    uint32_t word, next;
  };

  LocalDeltas() : slots_(1024, kNone), mask_(1023) {}

  void clear() {
    if (entries_.size() * 8 < slots_.size()) {
      for (const Entry& e : entries_) slots_[e.slot] = kNone;
    } else {
      std::fill(slots_.begin(), slots_.end(), kNone);
    }
    entries_.clear();
    appends_.clear();
  }

  void add(uint64_t key, int64_t delta) { entry(key).delta += delta; }

  void add_listed(uint64_t key, int64_t delta, uint32_t word) {
    Entry& e = entry(key);
    e.delta += delta;
    if (e.last_word == word) return;
    e.last_word = word;
    const uint32_t a = static_cast<uint32_t>(appends_.size());
    appends_.push_back({word, kNone});
    if (e.tail == kNone) {
      e.head = a;
    } else {
      appends_[e.tail].next = a;
    }
    e.tail = a;
  }

  const std::vector<Entry>& entries() const { return entries_; }
  const std::vector<Append>& appends() const { return appends_; }

 private:
  size_t find_slot(uint64_t key) const {
    size_t slot = key_hash(key) & mask_;
    while (slots_[slot] != kNone && entries_[slots_[slot]].key != key) slot = (slot + 1) & mask_;
    return slot;
  }

  Entry& entry(uint64_t key) {
    size_t slot = find_slot(key);
    if (slots_[slot] != kNone) return entries_[slots_[slot]];
    if (2 * (entries_.size() + 1) > slots_.size()) {
      slots_.assign(2 * slots_.size(), kNone);
      mask_ = slots_.size() - 1;
      for (uint32_t i = 0; i < entries_.size(); ++i) {
        entries_[i].slot = static_cast<uint32_t>(find_slot(entries_[i].key));
        slots_[entries_[i].slot] = i;
      }
      slot = find_slot(key);
    }
    slots_[slot] = static_cast<uint32_t>(entries_.size());
    entries_.push_back({key, 0, kNone, kNone, kNone, static_cast<uint32_t>(slot)});
    return entries_.back();
  }

  std::vector<uint32_t> slots_;
  size_t mask_;
  std::vector<Entry> entries_;
  std::vector<Append> appends_;
};

// Per-thread scratch of the word rewrite.
struct Worker {
  LocalDeltas deltas;
  std::vector<uint32_t> out;
  std::vector<uint8_t> made, merged;
};

struct HeapEntry {
  uint64_t count;
  uint32_t pair;
};

class Learner {
 public:
  Learner(BpeWords words, std::vector<std::string> initial_tokens, const BpeMergeOptions& options)
      : words_(std::move(words)),
        tokens_(std::move(initial_tokens)),
        options_(options),
        min_count_(std::max<uint64_t>(options.min_frequency, 1)),
        team_(options.threads),
        workers_(static_cast<size_t>(team_.threads())) {
    for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int32_t>(i));
    reserved_.insert(options.reserved.begin(), options.reserved.end());
    length_.resize(words_.size());
    for (size_t w = 0; w < words_.size(); ++w) {
      length_[w] = static_cast<uint32_t>(words_.starts[w + 1] - words_.starts[w]);
    }
    stamp_.assign(words_.size(), 0);
  }

  BpeLearned run() {
    const auto start = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    double last_report = 0;
    count_initial_pairs();
    std::vector<LearnedMerge> merges;
    int added = 0;
    while (added < options_.max_new_tokens && !heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), heap_less_);
      const HeapEntry top = heap_.back();
      heap_.pop_back();
      const uint64_t now = static_cast<uint64_t>(count_[top.pair]);
      if (top.count != now) {
        if (top.count > now && now >= min_count_) push(top.pair);
        continue;
      }
      if (now < min_count_) break;
      const uint32_t a = key_left(key_[top.pair]), b = key_right(key_[top.pair]);
      std::string bytes = tokens_[a] + tokens_[b];
      if (reserved_.count(bytes) != 0) {
        flags_[top.pair] |= kBanned;
        continue;
      }
      int32_t made = static_cast<int32_t>(tokens_.size());
      if (const auto it = ids_.find(bytes); it != ids_.end()) {
        made = it->second;
      } else {
        ids_.emplace(bytes, made);
        tokens_.push_back(std::move(bytes));
        ++added;
      }
      if (!(flags_[top.pair] & kMerged)) {
        flags_[top.pair] |= kMerged;
        merges.push_back({static_cast<int32_t>(a), static_cast<int32_t>(b), made});
      }
      apply_merge(top.pair, a, b, static_cast<uint32_t>(made));
      if (options_.progress && seconds() - last_report >= 1.0) {
        last_report = seconds();
        options_.progress(added, options_.max_new_tokens, last_report);
      }
    }
    if (options_.progress) options_.progress(added, options_.max_new_tokens, seconds());
    return BpeLearned{std::move(tokens_), std::move(merges)};
  }

 private:
  // Is heap entry x below y: a smaller count, or an equal count and larger (left, right) bytes.
  struct HeapLess {
    const Learner* self;
    bool operator()(const HeapEntry& x, const HeapEntry& y) const {
      if (x.count != y.count) return x.count < y.count;
      if (x.pair == y.pair) return false;
      const uint64_t kx = self->key_[x.pair], ky = self->key_[y.pair];
      const std::string_view lx = self->tokens_[key_left(kx)], ly = self->tokens_[key_left(ky)];
      if (const int c = lx.compare(ly); c != 0) return c > 0;
      return std::string_view(self->tokens_[key_right(kx)]) > self->tokens_[key_right(ky)];
    }
  };

  void push(uint32_t pair) {
    if (flags_[pair] & kBanned) return;
    heap_.push_back({static_cast<uint64_t>(count_[pair]), pair});
    std::push_heap(heap_.begin(), heap_.end(), heap_less_);
  }

  uint32_t pair_index(uint64_t key) {
    const uint32_t next = static_cast<uint32_t>(key_.size());
    const uint32_t i = index_.find_or_insert(key, next);
    if (i == next) {
      key_.push_back(key);
      count_.push_back(0);
      lists_.emplace_back();
      flags_.push_back(0);
    }
    return i;
  }

  // Adds each worker's deltas to the global counts, in worker order; returns the pairs whose
  // count rose (sorted, once each).
  std::vector<uint32_t> apply_deltas() {
    std::vector<uint32_t> rose;
    for (const Worker& worker : workers_) {
      const auto& appends = worker.deltas.appends();
      for (const LocalDeltas::Entry& e : worker.deltas.entries()) {
        const uint32_t p = pair_index(e.key);
        count_[p] += e.delta;
        for (uint32_t a = e.head; a != kNone; a = appends[a].next) {
          word_lists_.append(lists_[p], appends[a].word);
        }
        if (e.delta > 0) rose.push_back(p);
      }
    }
    std::sort(rose.begin(), rose.end());
    rose.erase(std::unique(rose.begin(), rose.end()), rose.end());
    return rose;
  }

  // Splits [0, n) into one contiguous range per thread.
  std::pair<size_t, size_t> range(size_t n, int t) const {
    const size_t threads = static_cast<size_t>(team_.threads());
    return {n * static_cast<size_t>(t) / threads, n * static_cast<size_t>(t + 1) / threads};
  }

  // Counts every pair in parallel, then lists each word under its pairs (in word order).
  void count_initial_pairs() {
    const size_t n = words_.size();
    team_.run([&](int t) {
      LocalDeltas& d = workers_[static_cast<size_t>(t)].deltas;
      d.clear();
      const auto [lo, hi] = range(n, t);
      for (size_t w = lo; w < hi; ++w) {
        const uint32_t* s = &words_.symbols[words_.starts[w]];
        const int64_t c = static_cast<int64_t>(words_.counts[w]);
        for (uint32_t i = 0; i + 1 < length_[w]; ++i) d.add(pair_key(s[i], s[i + 1]), c);
      }
    });
    apply_deltas();
    for (Worker& k : workers_) k.deltas = LocalDeltas();  // its tables grew for every pair
    for (size_t w = 0; w < n; ++w) {
      const uint32_t* s = &words_.symbols[words_.starts[w]];
      for (uint32_t i = 0; i + 1 < length_[w]; ++i) {
        word_lists_.append_new(lists_[pair_index(pair_key(s[i], s[i + 1]))],
                               static_cast<uint32_t>(w));
      }
    }
    for (uint32_t p = 0; p < count_.size(); ++p) {
      if (static_cast<uint64_t>(count_[p]) >= min_count_) {
        heap_.push_back({static_cast<uint64_t>(count_[p]), p});
      }
    }
    std::make_heap(heap_.begin(), heap_.end(), heap_less_);
  }

  // Rewrites word w with every (a, b) replaced by m, left to right, and records the changes of
  // pair counts: every pair of the old word that touches a replaced symbol goes, every pair of
  // the new word that touches an m comes (and lists w).
  void rewrite(Worker& k, uint32_t w, uint32_t a, uint32_t b, uint32_t m) {
    uint32_t* s = &words_.symbols[words_.starts[w]];
    const uint32_t n = length_[w];
    uint32_t first = 0;
    while (first + 1 < n && !(s[first] == a && s[first + 1] == b)) ++first;
    if (first + 1 >= n) return;
    k.out.assign(s, s + first);
    k.made.assign(first, 0);
    k.merged.assign(n, 0);
    for (uint32_t i = first; i < n;) {
      if (i + 1 < n && s[i] == a && s[i + 1] == b) {
        k.merged[i] = k.merged[i + 1] = 1;
        k.out.push_back(m);
        k.made.push_back(1);
        i += 2;
      } else {
        k.out.push_back(s[i]);
        k.made.push_back(0);
        ++i;
      }
    }
    const int64_t c = static_cast<int64_t>(words_.counts[w]);
    const uint32_t from = first > 0 ? first - 1 : 0;
    for (uint32_t i = from; i + 1 < n; ++i) {
      if (k.merged[i] | k.merged[i + 1]) k.deltas.add(pair_key(s[i], s[i + 1]), -c);
    }
    const uint32_t len = static_cast<uint32_t>(k.out.size());
    for (uint32_t j = from; j + 1 < len; ++j) {
      if (k.made[j] | k.made[j + 1]) k.deltas.add_listed(pair_key(k.out[j], k.out[j + 1]), c, w);
    }
    std::copy(k.out.begin() + first, k.out.end(), s + first);
    length_[w] = len;
  }

  void apply_merge(uint32_t pair, uint32_t a, uint32_t b, uint32_t m) {
    ++generation_;
    const uint32_t gen = generation_;
    WordLists::List& list = lists_[pair];
    if (team_.threads() > 1 && list.size >= kParallelWords) {
      flat_.clear();
      word_lists_.for_each(list, [&](uint32_t w) { flat_.push_back(w); });
      team_.run([&](int t) {
        Worker& k = workers_[static_cast<size_t>(t)];
        k.deltas.clear();
        const auto [lo, hi] = range(flat_.size(), t);
        for (size_t i = lo; i < hi; ++i) {
          const uint32_t w = flat_[i];
          if (std::atomic_ref<uint32_t>(stamp_[w]).exchange(gen, std::memory_order_relaxed) == gen)
            continue;
          rewrite(k, w, a, b, m);
        }
      });
    } else {
      for (Worker& k : workers_) k.deltas.clear();
      Worker& k = workers_[0];
      word_lists_.for_each(list, [&](uint32_t w) {
        if (stamp_[w] == gen) return;
        stamp_[w] = gen;
        rewrite(k, w, a, b, m);
      });
    }
    word_lists_.release(lists_[pair]);
    const std::vector<uint32_t> rose = apply_deltas();
    for (const uint32_t p : rose) {
      if (static_cast<uint64_t>(count_[p]) >= min_count_) push(p);
    }
  }

  BpeWords words_;
  std::vector<uint32_t> length_;  // current symbols of each word
  std::vector<uint32_t> stamp_;   // the last merge that visited each word
  uint32_t generation_ = 0;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_set<std::string> reserved_;
  BpeMergeOptions options_;
  uint64_t min_count_;
  ForkJoin team_;
  std::vector<Worker> workers_;
  std::vector<uint32_t> flat_;

  PairIndex index_;
  std::vector<uint64_t> key_;
  std::vector<int64_t> count_;
  std::vector<WordLists::List> lists_;
  std::vector<uint8_t> flags_;  // kMerged, kBanned
  WordLists word_lists_;
  HeapLess heap_less_{this};
  std::vector<HeapEntry> heap_;
};

}  // namespace

BpeLearned learn_bpe_merges(BpeWords words, std::vector<std::string> initial_tokens,
                            const BpeMergeOptions& options) {
  Learner learner(std::move(words), std::move(initial_tokens), options);
  return learner.run();
}

}  // namespace ph
