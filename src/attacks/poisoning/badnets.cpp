#include "aegis/attacks/poisoning/badnets.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"
#include "attacks/poisoning/internal/select.h"

namespace aegis {

nlohmann::json BadNetsOptions::to_json() const {
  return {{"target_class", target_class_}, {"fraction", fraction_}, {"seed", seed_}, {"trigger", trigger_.to_json()}};
}

PoisonResult badnets(const Dataset& data, const BadNetsOptions& o) {
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "cannot poison an empty dataset");
  const int64_t k = data.num_classes();
  AEGIS_CHECK(o.target_class_ >= 0 && o.target_class_ < k, InvalidArgument,
              "target class must be in [0, " << k << "), got " << o.target_class_);
  AEGIS_CHECK(o.fraction_ > 0 && o.fraction_ < 1, InvalidArgument,
              "poison fraction must be in (0, 1), got " << o.fraction_);
  o.trigger_.validate(data.sample_shape());
  torch::Tensor eligible = data.y != o.target_class_;
  int64_t pool = eligible.sum().item<int64_t>();
  int64_t count = std::max<int64_t>(1, std::llround(o.fraction_ * double(data.size())));
  AEGIS_CHECK(count <= pool, InvalidArgument,
              "poisoning " << count << " samples needs that many outside the target class; there are " << pool);

  PoisonResult r;
  r.attack = "badnets";
  r.parameters = o.to_json();
  r.trigger = o.trigger_;
  r.target_class = o.target_class_;
  r.indices = internal::choose_samples(eligible, count, o.seed_, "badnets");
  torch::Tensor idx = internal::index_tensor(r.indices);
  r.poisoned = data;
  r.poisoned.x = data.x.clone();
  r.poisoned.y = data.y.clone();
  torch::Tensor old = data.y.index_select(0, idx);
  r.poisoned.x.index_copy_(0, idx, o.trigger_.apply(data.x.index_select(0, idx)));
  r.poisoned.y.index_fill_(0, idx, o.target_class_);
  r.original_labels.assign(old.data_ptr<int64_t>(), old.data_ptr<int64_t>() + count);
  r.new_labels.assign(count, o.target_class_);
  r.clean_fingerprint = data.fingerprint();
  r.poisoned_fingerprint = r.poisoned.fingerprint();
  return r;
}

}  // namespace aegis
