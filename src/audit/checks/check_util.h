#pragma once
// Pieces the audit checks share: running a registered attack over the audit
// sample in batches, a black-box view of a classifier, example images for
// the report, and small statistics. Internal to src/audit.

#include <torch/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/attacks/attack.h"
#include "aegis/attacks/inference/membership.h"
#include "aegis/audit/check.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"
#include "aegis/core/progress.h"

namespace aegis::audit_internal {

/// The model seen through its scores only: gradients refused, every query
/// forwarded (and counted) by the wrapped model. Black-box checks attack this,
/// so an attack that silently used gradients would fail instead of cheating.
class BlackBoxView : public Classifier {
 public:
  explicit BlackBoxView(Classifier& inner) : Classifier(inner.meta()), inner_(inner) {}
  bool has_gradients() const override { return false; }

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override;

 private:
  Classifier& inner_;
};

/// The per-sample outcome of one attack over the whole audit sample.
struct SampleAttack {
  torch::Tensor success;   ///< [N] bool: misclassified after the attack (or already before)
  torch::Tensor x_adv;     ///< [N, ...]
  torch::Tensor adv_pred;  ///< [N] int64
  torch::Tensor l2, linf;  ///< [N] float
  int64_t queries = 0;
};

/// Runs `attack` over `data` in batches of `batch_size`, advancing `bar` by one
/// per batch.
SampleAttack attack_all(Classifier& model, const Dataset& data, Attack& attack, int64_t batch_size, Progress* bar);

/// Predictions of the model over the data, in batches.
torch::Tensor predict_all(Classifier& model, const torch::Tensor& x, int64_t batch_size);
/// Softmax probabilities over the data, in batches.
torch::Tensor probabilities_all(Classifier& model, const torch::Tensor& x, int64_t batch_size);

/// The registry name to use for a threat model: `requested` when given
/// (checked against the registry and the threat), else "pgd" for white-box
/// and the first registered black-box attack for black-box ("" when none).
std::string pick_attack(const std::string& threat, const std::string& requested);

/// Registry parameters {eps, norm, seed} merged with the user's extra
/// parameters (which may not repeat eps, norm or seed).
nlohmann::json attack_params(const nlohmann::json& extra, Norm norm, double eps, uint64_t seed,
                             const std::string& context);

/// True when samples are images the report can show ([C,H,W] with C 1 or 3, or
/// [H,W]).
bool is_image_data(const Dataset& data);

/// Up to `k` examples where the attack succeeded on a correctly classified
/// sample: {index, label, label_name, adv_pred, adv_pred_name, l2, linf,
/// clean_png, adv_png} with base64 PNGs. Empty for non-image data.
nlohmann::json adversarial_examples(const Classifier& model, const Dataset& data, const torch::Tensor& indices,
                                    const torch::Tensor& clean_correct, const SampleAttack& a, int64_t k);

/// Original dataset ids of the first `k` samples where mask holds.
std::vector<int64_t> first_ids(const torch::Tensor& mask, const torch::Tensor& indices, int64_t k);

/// Median of a 1-D tensor's finite values treating +inf as larger than all
/// (NaN-free); 0 for empty.
double median_of(const torch::Tensor& v);
/// Mean of a bool/float tensor as double; 0 for empty.
double mean_of(const torch::Tensor& v);

/// A membership attack's ROC curve as chart points [[fpr, tpr], ...] for the report.
nlohmann::json roc_points(const MembershipMetrics& m);

/// Rounds to 6 significant decimals so reports read well and compare stably.
double round6(double v);

/// A default list of eps for a norm (linf: 0.01..0.2, l2: 0.25..3).
std::vector<double> default_eps(Norm norm);

/// Formats eps for metric names: "0.1", "1.5".
std::string eps_str(double eps);

}  // namespace aegis::audit_internal
