#pragma once
/// Surrogate models: the models an attacker trains for itself. Shadow models
/// (membership inference) imitate the victim's training on the attacker's own
/// data; substitutes (extraction) learn the victim's answers. Both are
/// built-in architectures trained by aegis's Trainer, on hard labels or on
/// soft targets (a distribution per sample).
///
///   SurrogateModelOptions s = SurrogateModelOptions().arch("cnn").train(TrainOptions().epochs(10));
///   auto shadow = train_surrogate(victim->meta(), shadow_data, s);
///   auto copy = train_surrogate(victim->meta(), queries, s, &soft_targets);

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

struct SurrogateModelOptions {
  /// "auto" (the victim's architecture when it is a built-in one, else the
  /// built-in that fits the input shape), "mlp", "cnn" or "resnet".
  std::string arch_ = "auto";
  std::vector<int64_t> hidden_ = {256, 128};  ///< MLP widths
  double dropout_ = 0.0;                      ///< in [0, 1)
  /// Bake the training data's mean/std into the model (as `aegis train` does). Default on.
  bool normalize_ = true;
  TrainOptions train_ = TrainOptions().epochs(10).lr(2e-3);
  SurrogateModelOptions& arch(std::string v) { arch_ = std::move(v); return *this; }
  SurrogateModelOptions& hidden(std::vector<int64_t> v) { hidden_ = std::move(v); return *this; }
  SurrogateModelOptions& dropout(double v) { dropout_ = v; return *this; }
  SurrogateModelOptions& normalize(bool v) { normalize_ = v; return *this; }
  SurrogateModelOptions& train(TrainOptions v) { train_ = std::move(v); return *this; }
  void validate() const;
  nlohmann::json to_json() const;
};

/// The architecture `options` resolves to for a victim described by `meta`.
std::string surrogate_architecture(const ModelMeta& meta, const SurrogateModelOptions& options);

/// Trains a fresh surrogate with the victim's input shape and classes on
/// `data`: on its hard labels, or, when `soft_targets` ([N, C], rows summing
/// to 1) is given, on those distributions (soft cross-entropy). Seeds from
/// options.train_.seed_.
std::shared_ptr<ScriptClassifier> train_surrogate(const ModelMeta& meta, const Dataset& data,
                                                  const SurrogateModelOptions& options,
                                                  const torch::Tensor* soft_targets = nullptr);

/// Objective: cross-entropy against a per-sample target distribution, looked
/// up by the batch's dataset indices.
class SoftTargetObjective : public Objective {
 public:
  explicit SoftTargetObjective(torch::Tensor targets) : targets_(std::move(targets)) {}
  std::string name() const override { return "soft-targets"; }
  torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                     torch::Tensor& clean_logits) override;

 private:
  torch::Tensor targets_;
};

}  // namespace aegis
