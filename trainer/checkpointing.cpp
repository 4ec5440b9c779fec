#include "trainer/checkpointing.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <vector>

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

// The optimizer moments as whole (tensor-parallel local) arenas: the optimizer's own when it
// holds them all, else gathered from the ZeRO shards of every data-parallel rank.
struct Moments {
  float* m = nullptr;
  float* v = nullptr;
  std::vector<float> m_full, v_full;
};

bool sharded(const AdamW& opt, const Gpt& model) {
  return opt.lo() != 0 || opt.hi() < model.arena_size();
}

Moments gather_moments(AdamW& opt, Gpt& model, const ProcessGrid& grid) {
  Moments mo;
  if (!sharded(opt, model)) {
    mo.m = opt.m();
    mo.v = opt.v();
    return mo;
  }
  mo.m_full.resize(model.arena_capacity());
  mo.v_full.resize(model.arena_capacity());
  grid.dp_comm->all_gather(opt.m(), mo.m_full.data(), opt.size());
  grid.dp_comm->all_gather(opt.v(), mo.v_full.data(), opt.size());
  mo.m = mo.m_full.data();
  mo.v = mo.v_full.data();
  return mo;
}

std::vector<TensorSlice> all_slices(Gpt& model, Moments* mo, const ProcessGrid& grid) {
  std::vector<TensorSlice> t = slices(model.table(), model.params(), "/model/", grid);
  if (mo) {
    for (auto& s : slices(model.table(), mo->m, "/optim/m/", grid)) t.push_back(std::move(s));
    for (auto& s : slices(model.table(), mo->v, "/optim/v/", grid)) t.push_back(std::move(s));
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
                                     AdamW* opt, const TrainState& st, const ProcessGrid& grid) {
  CheckpointMeta meta;
  meta.step = st.step;
  meta.consumed_samples = st.consumed_samples;
  meta.seed = cfg.train.seed;
  meta.config_yaml = config_to_yaml(cfg);
  meta.layout = "dp=" + std::to_string(grid.dp) + " tp=" + std::to_string(grid.tp) +
                " world=" + std::to_string(grid.world) + (cfg.parallel.zero ? " zero=1" : "");
  meta.model_summary = model_summary(cfg.model);
  Moments mo;
  if (opt) mo = gather_moments(*opt, model, grid);
  return save_checkpoint(dir, meta, all_slices(model, opt ? &mo : nullptr, grid), MPI_COMM_WORLD,
                         cfg.checkpoint.keep_last);
}

CheckpointMeta check_checkpoint_matches(const std::string& path, const Config& cfg,
                                        const ProcessGrid&) {
  CheckpointMeta meta = read_checkpoint_meta(path, MPI_COMM_WORLD);
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
                                    AdamW* opt, const ProcessGrid& grid) {
  const CheckpointMeta meta = check_checkpoint_matches(path, cfg, grid);
  Moments mo;
  const bool shard = opt && sharded(*opt, model);
  if (opt && !shard) {
    mo.m = opt->m();
    mo.v = opt->v();
  } else if (shard) {  // read the whole local moments, keep this rank's ZeRO slice
    mo.m_full.assign(model.arena_capacity(), 0.0f);
    mo.v_full.assign(model.arena_capacity(), 0.0f);
    mo.m = mo.m_full.data();
    mo.v = mo.v_full.data();
  }
  load_checkpoint(path, all_slices(model, opt ? &mo : nullptr, grid), MPI_COMM_WORLD);
  if (shard) {
    std::memcpy(opt->m(), mo.m + opt->lo(), opt->size() * sizeof(float));
    std::memcpy(opt->v(), mo.v + opt->lo(), opt->size() * sizeof(float));
  }
  TrainState st;
  st.step = meta.step;
  st.consumed_samples = meta.consumed_samples;
  return st;
}

}  // namespace ph
