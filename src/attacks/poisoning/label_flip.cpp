#include "aegis/attacks/poisoning/label_flip.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "attacks/poisoning/internal/select.h"

namespace aegis {

nlohmann::json LabelFlipOptions::to_json() const {
  nlohmann::json j = {{"rate", rate_}, {"seed", seed_}, {"mode", source_ ? "targeted" : "random"}};
  if (source_) j["source_class"] = *source_;
  if (target_) j["target_class"] = *target_;
  return j;
}

PoisonResult label_flip(const Dataset& data, const LabelFlipOptions& o) {
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "cannot poison an empty dataset");
  AEGIS_CHECK(o.rate_ >= 0 && o.rate_ <= 1, InvalidArgument, "flip rate must be in [0, 1], got " << o.rate_);
  AEGIS_CHECK(o.source_.has_value() == o.target_.has_value(), InvalidArgument,
              "a targeted flip needs both a source and a target class");
  const int64_t k = data.num_classes();
  AEGIS_CHECK(k >= 2, InvalidArgument, "label flipping needs at least 2 classes");
  torch::Tensor eligible = torch::ones({data.size()}, torch::kBool);
  if (o.source_) {
    AEGIS_CHECK(*o.source_ >= 0 && *o.source_ < k && *o.target_ >= 0 && *o.target_ < k, InvalidArgument,
                "classes must be in [0, " << k << "), got source " << *o.source_ << " and target " << *o.target_);
    AEGIS_CHECK(*o.source_ != *o.target_, InvalidArgument, "source and target class are both " << *o.source_);
    eligible = data.y == *o.source_;
  }
  int64_t pool = eligible.sum().item<int64_t>();
  int64_t count = std::llround(o.rate_ * double(pool));

  PoisonResult r;
  r.attack = "label-flip";
  r.parameters = o.to_json();
  r.target_class = o.target_;
  r.indices = internal::choose_samples(eligible, count, o.seed_, "label-flip");
  r.poisoned = data;
  r.poisoned.y = data.y.clone();
  auto gen = make_generator(o.seed_, "label-flip-new-label");
  // A uniformly random *other* class: original + offset in [1, k) modulo k.
  torch::Tensor offsets = torch::randint(1, k, {count}, gen, torch::kLong);
  auto y = r.poisoned.y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < count; ++i) {
    int64_t idx = r.indices[i], old = y[idx];
    int64_t now = o.target_ ? *o.target_ : (old + offsets[i].item<int64_t>()) % k;
    r.original_labels.push_back(old);
    r.new_labels.push_back(now);
    y[idx] = now;
  }
  r.clean_fingerprint = data.fingerprint();
  r.poisoned_fingerprint = r.poisoned.fingerprint();
  return r;
}

}  // namespace aegis
