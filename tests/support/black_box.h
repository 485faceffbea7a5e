#pragma once
// A model seen only through its outputs, like the gateway's RemoteClassifier:
// for tests of black-box attacks and explainers.

#include <memory>

#include "aegis/core/script_classifier.h"

namespace aegis::testing {

class BlackBox : public Classifier {
 public:
  explicit BlackBox(std::shared_ptr<ScriptClassifier> inner) : Classifier(inner->meta()), inner_(std::move(inner)) {}
  bool has_gradients() const override { return false; }

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool) override { return inner_->logits(x); }

 private:
  std::shared_ptr<ScriptClassifier> inner_;
};

}  // namespace aegis::testing
