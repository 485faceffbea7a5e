#include "aegis/attacks/inference/membership_label_only.h"

#include <torch/torch.h>

#include <chrono>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

void LabelOnlyMembershipOptions::validate() const {
  AEGIS_CHECK(perturbations_ >= 1, InvalidArgument, "label-only: perturbations must be >= 1, got " << perturbations_);
  AEGIS_CHECK(noise_std_ > 0, InvalidArgument, "label-only: noise std must be > 0, got " << noise_std_);
  AEGIS_CHECK(threshold_ >= 0 && threshold_ <= 1, InvalidArgument, "label-only: threshold must be in [0, 1]");
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "batch size must be >= 1");
}

namespace {

torch::Tensor robustness(Classifier& model, const Dataset& d, const LabelOnlyMembershipOptions& o,
                         const std::string& purpose) {
  const ModelMeta& m = model.meta();
  const double width = m.clip_max - m.clip_min;
  auto gen = make_generator(o.seed_, purpose);
  torch::Tensor correct = torch::zeros({d.size()});
  for (int64_t i = 0; i < d.size(); i += o.batch_size_) {
    int64_t n = std::min(o.batch_size_, d.size() - i);
    torch::Tensor x = d.x.narrow(0, i, n), y = d.y.narrow(0, i, n);
    torch::Tensor hits = (model.predict(x) == y).to(torch::kFloat);
    for (int64_t k = 0; k < o.perturbations_; ++k) {
      torch::Tensor noisy = (x + torch::randn(x.sizes(), gen) * (o.noise_std_ * width)).clamp(m.clip_min, m.clip_max);
      hits += (model.predict(noisy) == y).to(torch::kFloat);
    }
    correct.narrow(0, i, n).copy_(hits / double(o.perturbations_ + 1));
  }
  return correct;
}

}  // namespace

MembershipResult label_only_membership(Classifier& model, const Dataset& members, const Dataset& nonmembers,
                                       const LabelOnlyMembershipOptions& o) {
  o.validate();
  check_membership_inputs(model.meta(), members, nonmembers);
  auto start = std::chrono::steady_clock::now();
  int64_t q0 = model.queries();
  MembershipResult r;
  r.attack = "label-only";
  r.access = OutputAccess().mode(AnswerMode::Label);
  r.member_scores = robustness(model, members, o, "label-only-members");
  r.nonmember_scores = robustness(model, nonmembers, o, "label-only-nonmembers");
  r.threshold = o.threshold_ - 1e-9;
  r.metrics = membership_metrics(r.member_scores, r.nonmember_scores, r.threshold);
  r.queries = model.queries() - q0;
  r.details = {{"perturbations", o.perturbations_}, {"noise_std", o.noise_std_}};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
