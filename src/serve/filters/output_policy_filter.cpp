#include "aegis/serve/filters/output_policy_filter.h"

#include <torch/torch.h>

namespace aegis::serve {

FilterStatus OutputPolicyFilter::on_request(RequestContext& ctx) {
  OutputPolicy* policy = ctx.runtime->policy.get();
  if (!policy) return FilterStatus::Continue;
  const ModelConfig& cfg = ctx.runtime->config();
  std::shared_ptr<LoadedModel> model = ctx.model;  // the version that answered checks its own answer
  PolicyVerdict v =
      policy->check(ctx.x, ctx.probs, ctx.key_id(), [&](const torch::Tensor& q) { return model->batcher->submit(q); });
  ctx.details["policy"] = v.details;
  if (services_.responses) {
    // The response rules' record of this request (the monitor filter leaves it here).
    auto actions = services_.responses->record(*ctx.runtime->slot, ctx.key_id(), ctx.detector_alert, ctx.monitor_alert,
                                               !v.reasons.empty());
    if (!actions.empty()) ctx.details["actions"] = actions;
  }
  if (v.reasons.empty()) return FilterStatus::Continue;
  ctx.details["policy"]["tripped"] = v.reasons;
  if (services_.metrics)
    for (const auto& r : v.reasons) services_.metrics->count_alert(cfg.name, r);
  if (v.reject)
    return ctx.reject(422, "output_policy",
                      "the answer failed the model's output policy (" + v.reason() + ") and was withheld");
  if (v.abstain.any().item<bool>()) {
    ctx.abstain = v.abstain;
    if (!ctx.flagged) ctx.decision = "abstain";
  }
  if (v.flag) {
    ctx.flagged = true;
    ctx.decision = "flag";
    ctx.reason = ctx.reason.empty() ? v.flag_reason() : ctx.reason + "+" + v.flag_reason();
    if (!ctx.reviewed) queue_for_review(ctx, services_);
  }
  return FilterStatus::Continue;
}

}  // namespace aegis::serve
