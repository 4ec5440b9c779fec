// HDF5 checkpoints: one file per checkpoint, every tensor in its full, unsharded shape,
// written and read collectively by hyperslab (parallel HDF5 over MPI-IO), so that any
// layout can load what any layout saved. The store is generic: the caller lists the tensors
// (from its parameter table) and the block of each that this rank holds. The file format is
// documented for h5py users in README.md ("Checkpoints"). The code: io/checkpoint.cpp (the
// format: save, load, verify, describe), io/checkpoint_resume.cpp (resume discovery),
// io/checkpoint_directory.cpp (file
// names, `latest`, the step files, atomic commit, pruning, space checks),
// io/checkpoint_checksum.cpp, io/checkpoint_blocks.cpp (tensor lists and blocks) and
// io/checkpoint_hdf5.cpp (HDF5 plumbing).
//
// Every function taking a communicator is collective over it: all ranks call it with the
// same path and the same list of tensor names and shapes (in the same order); they return
// together and, on failure, every rank throws the same exception. Exceptions:
//   std::invalid_argument  a malformed TensorSlice / CheckpointMeta (a bug of the caller)
//   ph::IoError            a save the environment failed (full disk, refused write, ...)
//   ph::InputError         a checkpoint that cannot be read or used (damaged, edited, missing,
//                          of another shape); each message is one complete line for the user
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parallel/errors.h"

namespace ph {

// The file format this code writes; it reads every version from 1 up to this one (README
// "Versions").
inline constexpr int kCheckpointFormatVersion = 5;

// One tensor of the checkpoint and the block of it this rank holds.
struct TensorSlice {
  std::string name;             // dataset path, e.g. "/model/h.0.attn.q.weight", "/optim/m/wte"
  std::vector<int64_t> shape;   // full, unsharded shape stored in the file ({} = a scalar)
  std::vector<int64_t> offset;  // this rank's block: start in each dim (empty = all zeros)
  std::vector<int64_t> count;   // block extent in each dim (empty = the full shape)
  float* data = nullptr;        // the block [count...], row-major, contiguous
  // Save: false marks a replica whose block another rank writes; the blocks of the writers
  // must tile the tensor exactly. Load: every rank reads its block; the checksum is verified
  // from the writers' blocks when they tile the tensor, else from the whole dataset.
  bool writer = true;
};

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  int64_t step = 0;
  // AdamW updates applied (the bias-correction count); equals `step` unless steps were skipped
  // (NaN policy). 0 <= optimizer_steps <= step. A version-1 file reads as optimizer_steps = step.
  int64_t optimizer_steps = 0;
  uint64_t consumed_samples = 0;  // global data position
  uint64_t seed = 0;
  std::string config_yaml;    // the resolved config
  std::string layout;         // e.g. "dp=1 tp=1 world=1"
  std::string model_summary;  // e.g. "gpt L=2 d=128 H=4 V=256 T=64"
  // The run's tokenizer (format 4; older files read as "bytes"): "bytes", or "bpe" with
  // tokenizer_vocab = vocab.json and tokenizer_merges = merges.txt, or "tiktoken" with
  // tokenizer_vocab = the rank file (io/tokenizer.h). The files' texts, byte for byte.
  std::string tokenizer = "bytes";
  std::string tokenizer_vocab;
  std::string tokenizer_merges;
  // The best evaluation so far (format 5; older files read as ""): a line the trainer writes
  // and reads (trainer/best_eval.h), "" before the first evaluation. Opaque here.
  std::string best_eval;
};

// "step_00000042.h5": the file name of the checkpoint of `step`.
std::string checkpoint_file_name(int64_t step);

// Writes dir/step_%08lld.h5 (creating dir if needed) and returns its path. Atomic: the data
// go to "<file>.tmp", which is closed, synced and renamed; then dir/latest (one line, the file
// name) is replaced the same way, last. Then, when keep_last > 0, the oldest step_*.h5 (by
// step number) beyond the newest keep_last are deleted — never the file just written — and
// stale step_*.h5.tmp left by crashed saves are removed; a failure there only prints a
// warning. meta.format_version must be kCheckpointFormatVersion, and 0 <= meta.optimizer_steps
// <= meta.step.
// Space is checked (free space, ulimit -f) and reserved (fallocate, where the file system has
// it) before any data is written: HDF5 1.10 cannot close a file whose writes failed (the
// process would crash at exit; fixed in later HDF5), so a full disk must be found first.
// On failure no existing file is touched and the temporary is removed. The environment's
// failures throw IoError (not bad input: main exits 1), with these messages:
//   cannot save checkpoint P: cannot create directory D: <reason>
//   cannot save checkpoint P: not enough free space in D: the checkpoint needs about N MiB,
//     M MiB are free
//   cannot save checkpoint P: the checkpoint needs about N MiB, more than the file size limit
//     (ulimit -f) of M MiB
//   cannot save checkpoint P: P.tmp exists and is not a regular file
//   cannot save checkpoint P: cannot create P.tmp: <HDF5 detail>
//   cannot save checkpoint P: cannot reserve N MiB for P.tmp: <reason>
//   cannot save checkpoint P: cannot write <the attributes|tensor NAME> to P.tmp: <HDF5 detail>
//   cannot save checkpoint P: cannot close P.tmp: <HDF5 detail>
//   cannot save checkpoint P: cannot sync P.tmp: <reason>
//   cannot save checkpoint P: cannot rename P.tmp to P: <reason>
//   cannot save checkpoint P: cannot update D/latest: <reason>   (P is complete but unnamed)
// and std::invalid_argument for a bad call, e.g.
//   cannot save checkpoint P: optimizer_steps N is not in [0, step S]
//   cannot save checkpoint P: tensor NAME: block [o, +c) exceeds shape [..] in dim d
//   cannot save checkpoint P: tensor NAME is listed twice
//   cannot save checkpoint P: tensor A/B lies inside tensor A (a tensor cannot be a group)
//   cannot save checkpoint P: the ranks passed different tensor lists (...)
//   cannot save checkpoint P: the writer blocks of tensor NAME cover N of its M elements
//     (every element must be written by exactly one rank; mark replicas writer=false)
std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta,
                            const std::vector<TensorSlice>& tensors, MPI_Comm comm, int keep_last);

// Writes dir/name (a file name ending in .h5, not step_*: e.g. "best.h5") the same way, atomically
// through name.tmp, replacing an existing file only once the new one is complete; neither
// dir/latest nor the step checkpoints are touched, and resume never picks it. Same errors as
// save_checkpoint, and std::invalid_argument for a bad name.
std::string save_named_checkpoint(const std::string& dir, const std::string& name,
                                  const CheckpointMeta& meta,
                                  const std::vector<TensorSlice>& tensors, MPI_Comm comm);

// The checkpoint dir/latest points to, or "" when dir or dir/latest does not exist. Not
// collective; the file is not opened. Errors (InputError):
//   checkpoint pointer D/latest names X, which does not exist
//   checkpoint pointer D/latest is malformed (expected one line with a file name)
// Resuming uses find_resume_checkpoint, which survives a missing or damaged pointer.
std::string latest_checkpoint(const std::string& dir);

// The step checkpoints in dir, newest (highest step) first, as (step, path) with path =
// dir/name: every regular file (or link to one) named "step_<digits>.h5" — never a temporary
// "step_*.h5.tmp". Empty when dir does not exist. Not collective; no file is opened (they may
// be damaged). For callers that must not overwrite or delete checkpoints they did not write.
std::vector<std::pair<int64_t, std::string>> step_checkpoints(const std::string& dir);

// Where a run continues (`checkpoint.resume: auto`).
struct ResumePoint {
  std::string path;  // the checkpoint to load, or "" when there is none
  std::string note;  // one line for the user when dir/latest could not be used, else ""
};

// Collective: the checkpoint of dir to resume from.
// - dir/latest names an existing file whose attributes and tensors all verify: that file, no
//   note (even if a newer step file exists: a crash between the two renames of a save).
// - Otherwise (latest missing, malformed, naming a missing file, a temporary, or a file that
//   fails verification): the newest step checkpoint (step_checkpoints) that verifies, with a
//   note saying what was wrong and what is used instead, naming the step files skipped, e.g.
//     checkpoint pointer D/latest is missing; resuming from D/step_00000060.h5, the newest
//     checkpoint that verifies
//     checkpoint pointer D/latest names step_00000080.h5, which fails verification: checkpoint
//     D/step_00000080.h5: tensor /model/wte fails its checksum (file corrupted); resuming from
//     D/step_00000060.h5, the newest checkpoint that verifies (skipped, failing verification:
//     step_00000070.h5)
// - No candidate: path "", and no note when dir holds neither `latest` nor a step file (a
//   fresh directory), else a note ending "; D holds no other checkpoint" or "; no checkpoint in
//   D verifies (failing verification: step_..., ...)".
// Every candidate is read in full (verify_checkpoint) until one verifies. A file of a newer
// format version is not damaged: its InputError ("... (use a newer polyhead)") propagates
// rather than an older checkpoint being used.
ResumePoint find_resume_checkpoint(const std::string& dir, MPI_Comm comm);

// The attributes of a checkpoint. Errors (InputError), shared by every reader below:
//   checkpoint P does not exist
//   checkpoint P is a directory, not a checkpoint file
//   checkpoint P is not a regular file                  (a FIFO, a device, ...)
//   checkpoint P cannot be accessed: <reason>
//   checkpoint P is unreadable (truncated or not a polyhead checkpoint): <detail>
//     e.g. "unable to open file: truncated file: eof = 4176, ..., stored_eof = 8352",
//     "unable to open file: file signature not found", "the file has no attribute 'step'",
//     "the file has no attribute 'optimizer_steps'" (version 2 on requires it),
//     "the file has no attribute 'meta_checksum'" (version 3 on requires it),
//     "the file has no attribute 'tokenizer'" (version 4 on requires the three tokenizer
//     attributes), "the file has no attribute 'best_eval'" (version 5 on requires it)
//   checkpoint P has format version N; this polyhead reads versions up to 5 (use a newer
//     polyhead)
//   checkpoint P: its attributes fail their checksum (the file was edited or is corrupted)
//     (version 3 on; also a file of version 1 or 2 that carries meta_checksum, which only
//     version 3 on writes: its format_version was edited)
// A version-1 file (written before optimizer_steps existed) reads with optimizer_steps = step;
// files of versions 1 and 2 have no checksum of their attributes.
CheckpointMeta read_checkpoint_meta(const std::string& path, MPI_Comm comm);

// Reads every tensor's block into its data (all ranks, writer or not) and verifies each
// tensor's checksum. On failure the blocks' contents are unspecified. Errors (InputError):
//   checkpoint P has no tensor NAME
//   checkpoint P: tensor NAME has shape [a, b] in the file, expected [c, d]
//   checkpoint P: tensor NAME is not float32
//   checkpoint P is unreadable (...): tensor NAME has no attribute 'checksum'
//   checkpoint P: cannot read tensor NAME: <HDF5 detail>
//   checkpoint P: tensor NAME fails its checksum (file corrupted)
// and std::invalid_argument for a bad tensor list ("cannot load checkpoint P: ...").
void load_checkpoint(const std::string& path, const std::vector<TensorSlice>& tensors,
                     MPI_Comm comm);

// Reads every dataset of the file (the ranks share the work) and verifies its checksum.
// Same errors as load_checkpoint.
void verify_checkpoint(const std::string& path, MPI_Comm comm);

// Human-readable summary for `polyhead inspect`: the attributes (optimizer_steps included),
// every tensor (natural name order) with shape and element count, the parameter count under
// /model, the config text.
std::string describe_checkpoint(const std::string& path, MPI_Comm comm);

// The checksum term of one element: splitmix64's finalizer applied to
// (index * 0x9E3779B97F4A7C15) XOR bits, where index is the element's row-major position in
// the full tensor and bits its IEEE-754 binary32 pattern. A tensor's checksum is the sum of
// its terms modulo 2^64, so blocks can be summed independently in any layout.
uint64_t checkpoint_checksum_term(uint64_t index, uint32_t bits);

// The root attribute meta_checksum (format 3) of a file with these attributes: the sum modulo
// 2^64 of checkpoint_checksum_term(i, byte i) over the bytes of the record
//   "format_version" NUL <format_version> NUL "step" NUL <step> NUL
//   "optimizer_steps" NUL <optimizer_steps> NUL "consumed_samples" NUL <consumed_samples> NUL
//   "seed" NUL <seed> NUL "config" NUL <config> NUL "layout" NUL <layout> NUL
//   "model" NUL <model> NUL
// and from format 4 on
//   "tokenizer" NUL <tokenizer> NUL "tokenizer_vocab" NUL <vocab> NUL
//   "tokenizer_merges" NUL <merges> NUL
// and from format 5 on
//   "best_eval" NUL <best_eval> NUL
// with the integers in decimal (a '-' for negatives) and the strings as their UTF-8 bytes
// (README "The checksum of the attributes").
uint64_t checkpoint_meta_checksum(const CheckpointMeta& meta);

}  // namespace ph
