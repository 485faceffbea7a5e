#include "explain/internal/coalitions.h"

#include <torch/torch.h>

#include <algorithm>


namespace aegis::explain {

torch::Tensor coalition_values(Classifier& model, const torch::Tensor& x, const torch::Tensor& ids,
                               const torch::Tensor& keep, const torch::Tensor& refs, int64_t target,
                               int64_t max_batch) {
  const int64_t k = keep.size(0), r = refs.size(0);
  std::vector<int64_t> one = {1};
  one.insert(one.end(), x.sizes().begin(), x.sizes().end());
  const torch::Tensor flat_ids = ids.flatten();
  const int64_t per_call = std::max<int64_t>(1, max_batch / r);
  torch::Tensor v = torch::empty({k}, torch::kDouble);
  torch::NoGradGuard no_grad;
  for (int64_t k0 = 0; k0 < k; k0 += per_call) {
    const int64_t kb = std::min(per_call, k - k0);
    std::vector<int64_t> keep_shape = {kb, 1};
    keep_shape.insert(keep_shape.end(), x.sizes().begin(), x.sizes().end());
    torch::Tensor kept = keep.narrow(0, k0, kb).index_select(1, flat_ids).view(keep_shape);  // [kb, 1, ...]
    torch::Tensor inputs = torch::where(kept, x.view(one).unsqueeze(0), refs.unsqueeze(0)).flatten(0, 1);
    torch::Tensor logits = model.logits(inputs).select(1, target).to(torch::kDouble);
    v.narrow(0, k0, kb).copy_(logits.view({kb, r}).mean(1));
  }
  return v;
}

torch::Tensor spread_over_groups(const torch::Tensor& group_values, const torch::Tensor& ids) {
  const torch::Tensor flat = ids.flatten();
  torch::Tensor size = torch::zeros({group_values.size(0)}, torch::kDouble);
  size.index_add_(0, flat, torch::ones({flat.size(0)}, torch::kDouble));
  return (group_values.to(torch::kDouble) / size.clamp_min(1)).index_select(0, flat).view(ids.sizes());
}

}  // namespace aegis::explain
