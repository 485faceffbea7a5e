#pragma once
// Pieces the trainer and DP-SGD's own loop share: the learning-rate
// schedule, the optimiser, the validation pass and the atomic checkpoint
// state write.

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis::training {

/// The learning rate at `global_step` of `total_steps` (constant, cosine or one-cycle).
double scheduled_lr(const TrainOptions& o, int64_t global_step, int64_t total_steps);
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, const std::vector<torch::Tensor>& params);
void set_lr(torch::optim::Optimizer& opt, double lr);
/// Accuracy on `val` (batches of at least 256); the mean loss in loss_out.
double validation_pass(ScriptClassifier& model, const Dataset& val, int64_t batch, double& loss_out);
/// Writes j to p through a temporary file and a rename.
void write_json_atomic(const std::filesystem::path& p, const nlohmann::json& j);

}  // namespace aegis::training
