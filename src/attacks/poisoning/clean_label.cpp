#include "aegis/attacks/poisoning/clean_label.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "attacks/poisoning/internal/select.h"

namespace aegis {

nlohmann::json CleanLabelOptions::to_json() const {
  return {{"target_class", target_class_},
          {"fraction", fraction_},
          {"eps", eps_},
          {"steps", steps_},
          {"step_size", step_size_},
          {"seed", seed_},
          {"trigger", trigger_.to_json()}};
}

namespace {

// Untargeted L-inf PGD with a random start: pushes the samples away from
// their (correct) label so the model cannot learn them from their content.
torch::Tensor harden(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const CleanLabelOptions& o,
                     at::Generator& gen) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const double step = o.step_size_ > 0 ? o.step_size_ : 2.5 * o.eps_ / double(o.steps_);
  torch::Tensor adv = (x + (torch::rand(x.sizes(), gen) * 2 - 1) * o.eps_).clamp(lo, hi);
  for (int64_t s = 0; s < o.steps_; ++s) {
    auto [loss, grad] = model.loss_gradient(adv, y);
    adv = adv + step * grad.sign();
    adv = torch::min(torch::max(adv, x - o.eps_), x + o.eps_).clamp(lo, hi);
  }
  return adv.detach();
}

}  // namespace

PoisonResult clean_label(const Dataset& data, Classifier& surrogate, const CleanLabelOptions& o) {
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "cannot poison an empty dataset");
  const int64_t k = data.num_classes();
  AEGIS_CHECK(o.target_class_ >= 0 && o.target_class_ < k, InvalidArgument,
              "target class must be in [0, " << k << "), got " << o.target_class_);
  AEGIS_CHECK(o.fraction_ > 0 && o.fraction_ <= 1, InvalidArgument,
              "poison fraction must be in (0, 1], got " << o.fraction_);
  AEGIS_CHECK(o.eps_ >= 0, InvalidArgument, "eps must be >= 0, got " << o.eps_);
  AEGIS_CHECK(o.eps_ == 0 || o.steps_ >= 1, InvalidArgument, "steps must be >= 1, got " << o.steps_);
  AEGIS_CHECK(o.batch_size_ >= 1, InvalidArgument, "batch size must be >= 1");
  o.trigger_.validate(data.sample_shape());
  if (o.eps_ > 0) {
    AEGIS_CHECK(surrogate.has_gradients(), Unsupported, "clean-label poisoning needs a white-box surrogate model");
    check_compatible(surrogate.meta(), data);
  }
  torch::Tensor eligible = data.y == o.target_class_;
  int64_t pool = eligible.sum().item<int64_t>();
  AEGIS_CHECK(pool > 0, InvalidArgument, "the data has no samples of target class " << o.target_class_);
  int64_t count = std::max<int64_t>(1, std::llround(o.fraction_ * double(pool)));

  PoisonResult r;
  r.attack = "clean-label";
  r.parameters = o.to_json();
  r.trigger = o.trigger_;
  r.target_class = o.target_class_;
  r.indices = internal::choose_samples(eligible, count, o.seed_, "clean-label");
  r.poisoned = data;
  r.poisoned.x = data.x.clone();
  auto gen = make_generator(o.seed_, "clean-label-pgd");
  for (int64_t start = 0; start < count; start += o.batch_size_) {
    int64_t n = std::min(o.batch_size_, count - start);
    torch::Tensor idx =
        internal::index_tensor(std::vector<int64_t>(r.indices.begin() + start, r.indices.begin() + start + n));
    torch::Tensor x = data.x.index_select(0, idx), y = data.y.index_select(0, idx);
    if (o.eps_ > 0) x = harden(surrogate, x, y, o, gen);
    r.poisoned.x.index_copy_(0, idx, o.trigger_.apply(x));
  }
  r.original_labels.assign(count, o.target_class_);
  r.new_labels.assign(count, o.target_class_);
  r.clean_fingerprint = data.fingerprint();
  r.poisoned_fingerprint = r.poisoned.fingerprint();
  return r;
}

}  // namespace aegis
