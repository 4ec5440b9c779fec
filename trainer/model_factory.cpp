#include "trainer/model_factory.h"

#include "model/bert.h"
#include "model/embedding.h"
#include "model/encdec.h"
#include "model/gpt.h"

namespace ph {

void check_layout(const Config& cfg, const ProcessGrid& grid, bool training) {
  const int mb = cfg.train.micro_batch;
  validate_layout(grid.world, grid.tp, cfg.model.n_heads, cfg.model.ffn_width(),
                  padded_vocab_size(cfg.model.vocab_size, grid.tp),
                  training ? cfg.train.global_batch : 0, mb);
}

std::unique_ptr<Model> make_model(Backend& be, const Config& cfg, const ProcessGrid& grid,
                                  Communicator* tp_comm, int max_batch, size_t arena_multiple) {
  ModelSetup setup;
  setup.max_batch = max_batch;
  setup.tp = TpGroup{grid.tp_rank, grid.tp, tp_comm};
  setup.arena_multiple = arena_multiple;
  setup.label_smoothing = cfg.train.label_smoothing;
  setup.max_predictions = cfg.data.mlm_predictions(cfg.model.seq_len);
  switch (cfg.model.type) {
    case ModelType::kGpt:
      return std::make_unique<Gpt>(be, cfg.model, setup);
    case ModelType::kEncDec:
      return std::make_unique<EncDec>(be, cfg.model, setup);
    case ModelType::kBert:
      return std::make_unique<Bert>(be, cfg.model, setup);
  }
  throw std::logic_error("make_model: unknown model.type");
}

}  // namespace ph
