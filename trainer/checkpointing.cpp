#include "trainer/checkpointing.h"

#include <sstream>

namespace ph {

namespace {

// One slice per parameter of `arena` under `prefix`; padding rows (vocab) are not stored.
std::vector<TensorSlice> slices(const ParamTable& table, float* arena, const std::string& prefix) {
  std::vector<TensorSlice> out;
  for (const Param& p : table.params()) {
    TensorSlice s;
    s.name = prefix + p.name;
    s.shape = p.shape;
    s.offset = p.block_offset;
    s.count = p.local_shape;
    // Rows past the real vocabulary are padding held in memory only.
    const int64_t rows_end = s.offset[0] + s.count[0];
    if (rows_end > p.shape[0]) s.count[0] = std::max<int64_t>(0, p.shape[0] - s.offset[0]);
    s.data = arena + p.offset;
    s.writer = true;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<TensorSlice> all_slices(Gpt& model, AdamW* opt) {
  std::vector<TensorSlice> t = slices(model.table(), model.params(), "/model/");
  if (opt) {
    for (auto& s : slices(model.table(), opt->m(), "/optim/m/")) t.push_back(std::move(s));
    for (auto& s : slices(model.table(), opt->v(), "/optim/v/")) t.push_back(std::move(s));
  }
  return t;
}

}  // namespace

std::string model_summary(const ModelConfig& m) {
  std::ostringstream o;
  o << m.type << " L=" << m.n_layers << " d=" << m.d_model << " H=" << m.n_heads
    << " f=" << m.ffn_width() << " V=" << m.vocab_size << " T=" << m.seq_len
    << " pos=" << m.pos_encoding << " norm=" << m.norm << " act=" << m.activation
    << " tie=" << (m.tie_embeddings ? 1 : 0) << " bias=" << (m.bias ? 1 : 0)
    << " embed_scale=" << (m.embed_scale ? 1 : 0);
  return o.str();
}

std::string save_training_checkpoint(const std::string& dir, const Config& cfg, Gpt& model,
                                     AdamW* opt, const TrainState& st, MPI_Comm comm) {
  CheckpointMeta meta;
  meta.step = st.step;
  meta.consumed_samples = st.consumed_samples;
  meta.seed = cfg.train.seed;
  meta.config_yaml = config_to_yaml(cfg);
  int world = 1;
  MPI_Comm_size(comm, &world);
  meta.layout = "dp=" + std::to_string(world / cfg.parallel.tp) +
                " tp=" + std::to_string(cfg.parallel.tp) + " world=" + std::to_string(world);
  meta.model_summary = model_summary(cfg.model);
  return save_checkpoint(dir, meta, all_slices(model, opt), comm, cfg.checkpoint.keep_last);
}

CheckpointMeta check_checkpoint_matches(const std::string& path, const Config& cfg, MPI_Comm comm) {
  CheckpointMeta meta = read_checkpoint_meta(path, comm);
  const std::string want = model_summary(cfg.model);
  if (meta.model_summary != want) {
    // Name the keys that differ.
    std::istringstream a(meta.model_summary), b(want);
    std::string ta, tb, diff;
    while (a >> ta && b >> tb)
      if (ta != tb) diff += (diff.empty() ? "" : ", ") + tb + " in the config but " + ta;
    throw InputError("checkpoint " + path + " does not match the model of the config: " + diff +
                     " in the checkpoint");
  }
  return meta;
}

TrainState load_training_checkpoint(const std::string& path, const Config& cfg, Gpt& model,
                                    AdamW* opt, MPI_Comm comm) {
  const CheckpointMeta meta = check_checkpoint_matches(path, cfg, comm);
  load_checkpoint(path, all_slices(model, opt), comm);
  TrainState st;
  st.step = meta.step;
  st.consumed_samples = meta.consumed_samples;
  return st;
}

}  // namespace ph
