#include "trainer/checkpointing.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "parallel/deadline.h"

namespace ph {

namespace {

// One slice per parameter of `arena` under `prefix`: this rank's block, without the
// vocabulary padding rows (memory only). Replicas do not write.
std::vector<TensorSlice> slices(const ParamTable& table, float* arena, const std::string& prefix,
                                const ProcessGrid& grid) {
  std::vector<TensorSlice> out;
  for (const Param& p : table.params()) {
    TensorSlice s;
    s.name = prefix + p.name;
    s.shape = p.shape;
    s.offset = p.block_offset;
    s.count = p.local_shape;
    const int64_t rows_end = s.offset[0] + s.count[0];
    if (rows_end > p.shape[0]) s.count[0] = std::max<int64_t>(0, p.shape[0] - s.offset[0]);
    s.data = arena + p.offset;
    s.writer = grid.dp_rank == 0 && (p.split != Split::Replicated || grid.tp_rank == 0);
    out.push_back(std::move(s));
  }
  return out;
}

// Host copies of what a checkpoint holds (the arenas are device memory of the backend):
// the parameter arena and the optimizer moments as whole (tensor-parallel local) arenas —
// under ZeRO gathered from the shards of every data-parallel rank.
struct HostState {
  std::vector<float> params, m, v;
};

bool sharded(const AdamW& opt, const Model& model) {
  return opt.lo() != 0 || opt.hi() < model.arena_size();
}

HostState download_state(const Model& model, const AdamW* opt, const ProcessGrid& grid) {
  HostState h;
  h.params.resize(model.arena_capacity());
  model.download_params(h.params.data());
  if (!opt) return h;
  std::vector<float> m(opt->size()), v(opt->size());
  opt->download_moments(m.data(), v.data());
  if (!sharded(*opt, model)) {
    h.m = std::move(m);
    h.v = std::move(v);
    return h;
  }
  h.m.resize(model.arena_capacity());
  h.v.resize(model.arena_capacity());
  grid.dp_comm->all_gather(m.data(), h.m.data(), opt->size());
  grid.dp_comm->all_gather(v.data(), h.v.data(), opt->size());
  return h;
}

std::vector<TensorSlice> all_slices(const Model& model, HostState& h, bool with_moments,
                                    const ProcessGrid& grid) {
  std::vector<TensorSlice> t = slices(model.table(), h.params.data(), "/model/", grid);
  if (with_moments) {
    for (auto& s : slices(model.table(), h.m.data(), "/optim/m/", grid)) t.push_back(std::move(s));
    for (auto& s : slices(model.table(), h.v.data(), "/optim/v/", grid)) t.push_back(std::move(s));
  }
  return t;
}

}  // namespace

std::string model_summary(const ModelConfig& m) {
  std::ostringstream o;
  o << name_of(m.type);
  if (m.type == ModelType::kEncDec)
    o << " L=" << m.encoder_depth() << "+" << m.decoder_depth();
  else
    o << " L=" << m.n_layers;
  o << " d=" << m.d_model << " H=" << m.n_heads << " f=" << m.ffn_width() << " V=" << m.vocab_size;
  if (m.type == ModelType::kEncDec) o << " S=" << m.source_len();
  o << " T=" << m.seq_len << " pos=" << name_of(m.pos_encoding) << " norm=" << name_of(m.norm)
    << " act=" << name_of(m.activation);
  if (m.type == ModelType::kEncDec)
    o << " share=" << name_of(m.share_embeddings);
  else
    o << " tie=" << (m.tie_embeddings ? 1 : 0);
  o << " bias=" << (m.bias ? 1 : 0) << " embed_scale=" << (m.embed_scale ? 1 : 0);
  if (m.type == ModelType::kBert)
    o << " types=" << m.type_vocab_size << " head=" << name_of(m.sentence_head)
      << " eps=" << m.layer_norm_eps;
  return o.str();
}

std::string save_training_checkpoint(const std::string& dir, const Config& cfg,
                                     const Tokenizer& tokenizer, Model& model, AdamW* opt,
                                     const TrainState& st, const ProcessGrid& grid,
                                     const std::string& name) {
  CheckpointMeta meta;
  meta.step = st.step;
  meta.optimizer_steps = st.optimizer_steps;
  meta.consumed_samples = st.consumed_samples;
  meta.seed = cfg.train.seed;
  meta.config_yaml = config_to_yaml(cfg);
  meta.layout = "dp=" + std::to_string(grid.dp) + " tp=" + std::to_string(grid.tp) +
                " world=" + std::to_string(grid.world) + (cfg.parallel.zero ? " zero=1" : "");
  meta.model_summary = model_summary(cfg.model);
  meta.tokenizer = tokenizer.kind();
  meta.tokenizer_vocab = tokenizer.vocab_text();
  meta.tokenizer_merges = tokenizer.merges_text();
  meta.best_eval = st.best_eval;
  HostState h = download_state(model, opt, grid);
  // Collective I/O (MPI-IO under HDF5): a rank that never arrives ends the job at the deadline.
  const Deadline deadline("writing checkpoint", "", 0, "world", grid.world);
  const std::vector<TensorSlice> tensors = all_slices(model, h, opt != nullptr, grid);
  if (!name.empty()) return save_named_checkpoint(dir, name, meta, tensors, MPI_COMM_WORLD);
  return save_checkpoint(dir, meta, tensors, MPI_COMM_WORLD, cfg.checkpoint.keep_last);
}

CheckpointMeta check_checkpoint_matches(const std::string& path, const Config& cfg) {
  CheckpointMeta meta = read_checkpoint_meta(path, MPI_COMM_WORLD);
  Config saved;
  try {
    saved = parse_config(meta.config_yaml, {}, "the config embedded in checkpoint " + path);
  } catch (const InputError& e) {
    throw InputError(std::string(e.what()) + " (written by another polyhead?)");
  }
  std::string diff;
  for (const ConfigDifference& d : config_differences(cfg, saved, /*architecture_only=*/true))
    diff += (diff.empty() ? "" : ", ") + d.key + " is " + d.a + " in the config but " + d.b +
            " in the checkpoint";
  if (!diff.empty())
    throw InputError("checkpoint " + path + " does not match the model of the config: " + diff);
  return meta;
}

Tokenizer checkpoint_tokenizer(const CheckpointMeta& meta, const std::string& path) {
  return Tokenizer::from_stored(meta.tokenizer, meta.tokenizer_vocab, meta.tokenizer_merges,
                                "checkpoint " + path + " (its tokenizer)");
}

void check_checkpoint_tokenizer(const std::string& path, const Tokenizer& run,
                                const std::string& name) {
  const CheckpointMeta meta = read_checkpoint_meta(path, MPI_COMM_WORLD);
  const Tokenizer stored = checkpoint_tokenizer(meta, path);
  if (!stored.same_as(run))
    throw InputError("checkpoint " + path + " was trained with another tokenizer: it holds " +
                     stored.describe() + ", " + name + " is " + run.describe());
}

TrainState load_training_checkpoint(const std::string& path, const Config& cfg, Model& model,
                                    AdamW* opt, const ProcessGrid& grid) {
  const CheckpointMeta meta = check_checkpoint_matches(path, cfg);
  // Read whole local arenas on the host (the zero padding stays zero), then upload them; a
  // ZeRO rank keeps its slice of the moments.
  HostState h;
  h.params.assign(model.arena_capacity(), 0.0f);
  if (opt) {
    h.m.assign(model.arena_capacity(), 0.0f);
    h.v.assign(model.arena_capacity(), 0.0f);
  }
  {
    const Deadline deadline("reading checkpoint", "", 0, "world", grid.world);
    load_checkpoint(path, all_slices(model, h, opt != nullptr, grid), MPI_COMM_WORLD);
  }
  model.upload_params(h.params.data());
  if (opt) opt->upload_moments(h.m.data() + opt->lo(), h.v.data() + opt->lo());
  TrainState st;
  st.step = meta.step;
  st.optimizer_steps = meta.optimizer_steps;
  st.consumed_samples = meta.consumed_samples;
  st.best_eval = meta.best_eval;
  return st;
}

}  // namespace ph
