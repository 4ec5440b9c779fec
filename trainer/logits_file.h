// `polyhead eval --logits OUT`: the logits of the first micro-batch of the evaluation data, with
// that batch, as one JSON object, so that another implementation (tools/export.py's HF or
// PyTorch model) can be compared with polyhead logit for logit.
//
// Format (README "Exporting and importing models"): {"family": "gpt"|"encdec"|"bert", "B", "T",
// "V", "rows", "tokens" [B*T], "targets" [rows] (-1: not counted), then per family "S",
// "source" [B*S], "source_lengths" [B] (encdec); "P", "types" [B*T], "lengths" [B],
// "mlm_positions" [B*P], "sentence_labels" [B] (bert); and "logits" [rows*V] row-major, the
// unpadded vocabulary, each float printed with 9 significant digits (exact for float32)}. A
// row is a position (B*T) of the GPT and the decoder, a prediction slot (B*P) of BERT.
#pragma once
#include <string>

#include "model/model.h"
#include "trainer/sample_source.h"

namespace ph {

// Runs the model (dropout off) on samples 0 .. min(batch, val.size()) - 1 of val and writes the
// file at path (atomically). One process only (the caller refuses a grid of more ranks).
void write_logits_file(const std::string& path, Model& model, SampleSource& val, int batch);

}  // namespace ph
