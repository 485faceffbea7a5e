#pragma once
/// Trainer: standard and robust training of a ScriptClassifier, with a
/// validation split, early stopping, checkpoints each epoch and resume.
/// What is minimised on each batch is an Objective: cross-entropy for
/// standard training; robust training (PGD-AT, TRADES), distillation and
/// others plug in their own without touching the loop.
///
///   auto model = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10));
///   TrainResult r = train(*model, fit, &val, TrainOptions().epochs(3).lr(1e-3));

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"

namespace aegis {

struct TrainOptions {
  int64_t epochs_ = 3;          ///< passes over the training data, >= 1
  int64_t batch_size_ = 128;    ///< >= 1
  double lr_ = 1e-3;            ///< peak learning rate, > 0
  double weight_decay_ = 0.0;   ///< decoupled (AdamW) or L2 (SGD), >= 0
  double momentum_ = 0.9;       ///< SGD only
  double label_smoothing_ = 0.0;  ///< in [0, 1)
  std::string optimizer_ = "adam";  ///< "adam" (AdamW) or "sgd"
  std::string schedule_ = "cosine"; ///< "constant", "cosine" (per step) or "onecycle"
  int64_t patience_ = 0;        ///< early stopping: epochs without validation gain; 0 = off
  uint64_t seed_ = 0;           ///< shuffling (and, via seed_everything, dropout)
  std::string checkpoint_dir_;  ///< "" = no checkpoints; else one after each epoch
  bool resume_ = false;         ///< continue from checkpoint_dir_ when it holds one

  TrainOptions& epochs(int64_t v) { epochs_ = v; return *this; }
  TrainOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  TrainOptions& lr(double v) { lr_ = v; return *this; }
  TrainOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  TrainOptions& momentum(double v) { momentum_ = v; return *this; }
  TrainOptions& label_smoothing(double v) { label_smoothing_ = v; return *this; }
  TrainOptions& optimizer(std::string v) { optimizer_ = std::move(v); return *this; }
  TrainOptions& schedule(std::string v) { schedule_ = std::move(v); return *this; }
  TrainOptions& patience(int64_t v) { patience_ = v; return *this; }
  TrainOptions& seed(uint64_t v) { seed_ = v; return *this; }
  TrainOptions& checkpoint_dir(std::string v) { checkpoint_dir_ = std::move(v); return *this; }
  TrainOptions& resume(bool v) { resume_ = v; return *this; }

  void validate() const;
  nlohmann::json to_json() const;
};

/// Where the loop is when it asks an Objective for a loss.
struct StepContext {
  int64_t epoch = 0;   ///< 0-based
  int64_t epochs = 1;
  int64_t step = 0;    ///< 0-based within the epoch
  int64_t steps = 1;   ///< steps in an epoch
  double label_smoothing = 0.0;
  /// Fraction of training done, in [0, 1): for warm-ups.
  double progress() const { return (epoch + double(step) / double(steps)) / double(epochs); }
};

/// What training minimises on a batch. The model is in training state
/// (TrainingScope) when loss() is called; an objective that needs the model
/// in eval mode for part of its work (e.g. crafting adversarial examples)
/// switches and restores it itself.
class Objective {
 public:
  virtual ~Objective() = default;
  /// Short name recorded in the model's provenance ("standard", "pgd-at", ...).
  virtual std::string name() const = 0;
  /// Mean loss over the batch, differentiable in the model's parameters.
  /// May also return the logits it used on clean inputs for accuracy
  /// bookkeeping through `clean_logits` (left undefined when not computed).
  virtual torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                             torch::Tensor& clean_logits) = 0;
  /// Parameters recorded in the model's provenance.
  virtual nlohmann::json describe() const { return nlohmann::json::object(); }
  /// What the logits given back through `clean_logits` were computed on:
  /// "clean" inputs (the default) or the objective's "adversarial" ones (an
  /// adversarial objective that has no clean forward reports its robust
  /// training accuracy instead of none).
  virtual std::string train_accuracy_inputs() const { return "clean"; }
  /// The adversarial inputs this objective trains on for `batch` at `ctx`,
  /// crafted against the model in its evaluation state (the model is left in
  /// training state afterwards, as loss() expects); undefined for objectives
  /// that craft none. loss() uses it, and a user's own training loop can too
  /// (the Python package's adversarial_batch).
  virtual torch::Tensor adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) {
    (void)model, (void)batch, (void)ctx;
    return {};
  }
};

/// Plain cross-entropy (with the options' label smoothing).
class CrossEntropyObjective : public Objective {
 public:
  std::string name() const override { return "standard"; }
  torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                     torch::Tensor& clean_logits) override;
};

struct EpochStats {
  int64_t epoch = 0;  ///< 1-based
  double train_loss = 0, train_accuracy = 0;
  /// What train_accuracy measured: "clean", "adversarial" (the objective's
  /// own adversarial batch), or "none" (the objective gave no logits; then
  /// train_accuracy is 0 and means nothing).
  std::string train_accuracy_on = "clean";
  double val_loss = 0, val_accuracy = 0;  ///< 0 when there is no validation set
  double lr = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

struct TrainResult {
  std::vector<EpochStats> history;
  int64_t best_epoch = 0;       ///< 1-based epoch whose weights the model holds
  bool stopped_early = false;
  bool resumed = false;
  int64_t resumed_from_epoch = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// Trains `model` in place. `val` may be null (then no early stopping and the
/// final weights are kept). The model's provenance gains the recipe, the
/// objective and the training data's fingerprint. Called for each finished
/// epoch, `on_epoch` may print or log.
TrainResult train(ScriptClassifier& model, const Dataset& train_data, const Dataset* val,
                  const TrainOptions& options, Objective* objective = nullptr,
                  const std::function<void(const EpochStats&)>& on_epoch = {});

}  // namespace aegis
