#pragma once
/// DP-SGD (Abadi et al. 2016): training whose final and intermediate weights
/// satisfy (epsilon, delta)-differential privacy with respect to the training
/// examples. Each logical step draws a Poisson batch (each example with
/// probability q = batch_size / N), computes per-sample gradients
/// (per_sample_grad.h) in physical chunks of at most physical_batch_size,
/// clips each to norm C (clipping.h), sums, adds Gaussian noise of std
/// sigma * C once, divides by the expected batch size and takes one optimizer
/// step; the accountant records (sigma, q) for every step. sigma comes from
/// the options or from a target epsilon (find_noise_multiplier over the whole
/// run). The model's provenance gains a "privacy" record: the spent
/// (epsilon, delta), accountant, sigma, C, q, steps and whether the noise
/// was seeded (reproducible, not private against whoever knows the seed).
///
///   DpSgdResult r = train_dp_sgd(*model, fit, &val, TrainOptions().epochs(10).batch_size(256).lr(0.5)
///                                    .optimizer("sgd").schedule("constant"),
///                                DpSgdOptions(1.0).target_epsilon(3.0).delta(1e-5));
///   r.epsilon;   // <= 3

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

struct DpSgdOptions {
  explicit DpSgdOptions(double max_grad_norm = 1.0) : max_grad_norm_(max_grad_norm) {}

  double max_grad_norm_;           ///< C, > 0
  double noise_multiplier_ = 0;    ///< sigma > 0; 0 = find it from target_epsilon_
  double target_epsilon_ = 0;      ///< > 0 when noise_multiplier_ is 0
  double delta_ = 1e-5;            ///< in (0, 1); should be well below 1/N
  int64_t physical_batch_size_ = 64;  ///< examples whose per-sample gradients are held at once, >= 1
  std::string clipping_ = "flat";  ///< "flat" or "per-layer"
  std::string accountant_ = "prv";  ///< "prv" or "rdp": finds sigma and reports epsilon
  bool seeded_ = false;  ///< reproducible sampling and noise from TrainOptions::seed_ (labelled; not private)
  /// Exponential moving average of the weights (decay per step, in [0, 1); 0 =
  /// off): the model keeps the average, which smooths out the noise of the
  /// last steps. Post-processing of the private iterates, so it costs no
  /// privacy. A warm-up uses min(decay, (1 + t) / (10 + t)) at step t.
  double ema_decay_ = 0;

  DpSgdOptions& max_grad_norm(double v) { max_grad_norm_ = v; return *this; }
  DpSgdOptions& noise_multiplier(double v) { noise_multiplier_ = v; return *this; }
  DpSgdOptions& target_epsilon(double v) { target_epsilon_ = v; return *this; }
  DpSgdOptions& delta(double v) { delta_ = v; return *this; }
  DpSgdOptions& physical_batch_size(int64_t v) { physical_batch_size_ = v; return *this; }
  DpSgdOptions& clipping(std::string v) { clipping_ = std::move(v); return *this; }
  DpSgdOptions& accountant(std::string v) { accountant_ = std::move(v); return *this; }
  DpSgdOptions& seeded(bool v) { seeded_ = v; return *this; }
  DpSgdOptions& ema_decay(double v) { ema_decay_ = v; return *this; }

  /// InvalidArgument naming the first bad field.
  void validate() const;
  nlohmann::json to_json() const;
};

struct DpSgdResult {
  TrainResult training;        ///< per-epoch history (train loss/accuracy on the Poisson batches, validation)
  double noise_multiplier = 0;  ///< sigma used
  double sample_rate = 0;       ///< q
  int64_t steps = 0;            ///< logical steps accounted, resumed ones included
  double epsilon = 0, delta = 0;  ///< spent
  std::string accountant;
  bool seeded = false;
  /// The "privacy" record stored in the model's provenance.
  nlohmann::json privacy;
  nlohmann::json to_json() const;
};

/// Trains `model` in place with DP-SGD. `options` gives epochs, batch_size
/// (the expected logical batch: q = batch_size / N), lr, optimizer, schedule,
/// weight decay, label smoothing, seed and checkpoints (patience must be 0:
/// early stopping on validation data would be an unaccounted use of it).
/// Throws Unsupported naming the layer before any step when the model has
/// one DP-SGD cannot train (batch norm: use GroupNorm). A checkpoint carries
/// the accountant's history; resuming may raise `epochs` and keeps counting.
DpSgdResult train_dp_sgd(ScriptClassifier& model, const Dataset& train_data, const Dataset* val,
                         const TrainOptions& options, const DpSgdOptions& dp,
                         const std::function<void(const EpochStats&)>& on_epoch = {});

}  // namespace aegis
