#pragma once
/// Classifier: the one model interface of aegis. Every attack, defence,
/// detector, audit check and the gateway take a Classifier, so a TorchScript
/// file, a built-in network, an ensemble, a defended wrapper or a model behind
/// a remote gateway all work with all of them.
///
/// Contract:
///  - inputs are raw, in [meta().clip_min, meta().clip_max], shaped
///    [batch, meta().input_shape...]; any normalisation happens inside;
///  - the model is in eval mode whenever it is queried or attacked, and
///    querying or differentiating it never changes its parameters;
///  - every sample passed through logits()/forward() counts as one query.
///
///   auto model = load_classifier("model.pt");
///   torch::Tensor logits = model->logits(x);             // no autograd
///   auto [loss, grad] = model->loss_gradient(x, y);      // white-box only

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include <torch/types.h>

#include "aegis/core/model_meta.h"

namespace aegis {

class Classifier {
 public:
  virtual ~Classifier() = default;

  const ModelMeta& meta() const { return meta_; }

  /// Logits for a batch, without autograd. Counts x.size(0) queries.
  torch::Tensor logits(const torch::Tensor& x);
  /// Softmax probabilities for a batch (what a score-based black box returns).
  torch::Tensor probabilities(const torch::Tensor& x);
  /// Predicted class per sample.
  torch::Tensor predict(const torch::Tensor& x);

  /// True when forward() and loss_gradient() are available (white-box).
  virtual bool has_gradients() const { return true; }
  /// Logits that carry autograd back to `x` (which must require grad, or be
  /// a function of a tensor that does). Counts queries. Throws Unsupported
  /// for black-box classifiers.
  torch::Tensor forward(const torch::Tensor& x);
  /// Per-sample cross-entropy loss and its gradient with respect to x.
  std::pair<torch::Tensor, torch::Tensor> loss_gradient(const torch::Tensor& x,
                                                        const torch::Tensor& y);

  /// Queries answered since construction or the last reset.
  int64_t queries() const { return queries_.load(); }
  void reset_queries() { queries_.store(0); }

  virtual torch::Device device() const { return torch::kCPU; }

  /// Throws ShapeMismatch unless x is [batch, input_shape...].
  void check_input(const torch::Tensor& x) const;

 protected:
  explicit Classifier(ModelMeta meta) : meta_(std::move(meta)) {}
  /// Logits for x (already checked). With `grad` false the caller holds a
  /// NoGradGuard; with it true the result must be differentiable in x.
  virtual torch::Tensor compute_logits(const torch::Tensor& x, bool grad) = 0;
  void count_queries(int64_t n) { queries_.fetch_add(n); }

  ModelMeta meta_;

 private:
  std::atomic<int64_t> queries_{0};
};

using ClassifierPtr = std::shared_ptr<Classifier>;

}  // namespace aegis
