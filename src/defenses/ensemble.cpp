#include "aegis/defenses/ensemble.h"

#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "aegis/core/error.h"

namespace aegis {

namespace {
ModelMeta ensemble_meta(const std::vector<ClassifierPtr>& members) {
  AEGIS_CHECK(!members.empty(), InvalidArgument, "an ensemble needs at least one member");
  for (const auto& m : members) AEGIS_CHECK(m != nullptr, InvalidArgument, "ensemble member is null");
  ModelMeta meta = members[0]->meta();
  for (size_t i = 1; i < members.size(); ++i) {
    const ModelMeta& o = members[i]->meta();
    AEGIS_CHECK(o.input_shape == meta.input_shape && o.num_classes == meta.num_classes, ShapeMismatch,
                "ensemble member " << i
                                   << " takes other inputs or has another "
                                      "number of classes than member 0");
    AEGIS_CHECK(o.clip_min == meta.clip_min && o.clip_max == meta.clip_max, ShapeMismatch,
                "ensemble member " << i << " has another valid input range than member 0");
  }
  meta.architecture = "ensemble";
  meta.mean.clear();  // each member normalises its own inputs
  meta.std.clear();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& m : members) list.push_back({{"architecture", m->meta().architecture}});
  meta.provenance = {{"ensemble", list}};
  return meta;
}
}  // namespace

EnsembleClassifier::EnsembleClassifier(std::vector<ClassifierPtr> members, EnsembleOptions options)
    : Classifier(ensemble_meta(members)), members_(std::move(members)), o_(std::move(options)) {
  AEGIS_CHECK(o_.combine_ == "probabilities" || o_.combine_ == "logits", InvalidArgument,
              "ensemble combination must be 'probabilities' or 'logits', got '" << o_.combine_ << "'");
  if (o_.weights_.empty()) o_.weights_.assign(members_.size(), 1.0);
  AEGIS_CHECK(o_.weights_.size() == members_.size(), InvalidArgument,
              "ensemble has " << members_.size() << " members but " << o_.weights_.size() << " weights");
  double total = 0;
  for (double w : o_.weights_) {
    AEGIS_CHECK(w >= 0 && std::isfinite(w), InvalidArgument, "ensemble weights must be >= 0, got " << w);
    total += w;
  }
  AEGIS_CHECK(total > 0, InvalidArgument, "ensemble weights must not all be 0");
  for (double w : o_.weights_) w_.push_back(w / total);
  meta_.provenance["combine"] = o_.combine_;
  meta_.provenance["weights"] = w_;
}

bool EnsembleClassifier::has_gradients() const {
  for (const auto& m : members_)
    if (!m->has_gradients()) return false;
  return true;
}

torch::Tensor EnsembleClassifier::compute_logits(const torch::Tensor& x, bool grad) {
  const bool probs = o_.combine_ == "probabilities";
  torch::Tensor acc;
  for (size_t i = 0; i < members_.size(); ++i) {
    torch::Tensor z = grad ? members_[i]->forward(x) : members_[i]->logits(x);
    torch::Tensor term = (probs ? torch::softmax(z, 1) : z) * w_[i];
    acc = acc.defined() ? acc + term : term;
  }
  // log of the mean probability: softmax() of it gives the mean back exactly.
  return probs ? torch::log(acc.clamp_min(1e-30)) : acc;
}

}  // namespace aegis
