#include "aegis/serve/filters/detection_filter.h"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include "aegis/core/error.h"
#include "aegis/serve/filters/explain_filter.h"
#include "aegis/serve/metrics.h"
#include "aegis/serve/monitor_sync.h"

namespace aegis::serve {

FilterStatus DetectionFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  if (cfg.detection_policy == DetectionPolicy::Off) return FilterStatus::Continue;
  auto model = ctx.runtime->slot->current();
  if (!model->detector) return FilterStatus::Continue;
  torch::Tensor scores, flags;
  {
    std::lock_guard<std::mutex> lock(model->detector_mu);
    torch::NoGradGuard ng;
    scores = model->detector->score(ctx.x).to(torch::kFloat).flatten();
    flags = scores > model->detector->threshold();
  }
  std::vector<float> s(scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
  ctx.details["detector"] = {
      {"name", model->detector->name()}, {"scores", s}, {"threshold", model->detector->threshold()}};
  ctx.detector_alert = flags.any().item<bool>();
  if (!ctx.detector_alert) return FilterStatus::Continue;
  if (services_.metrics) services_.metrics->count_alert(cfg.name, "detector");
  switch (cfg.detection_policy) {
    case DetectionPolicy::Reject:
      if (services_.responses) services_.responses->record(*ctx.runtime->slot, ctx.key_id(), true, false);
      return ctx.reject(422, "adversarial_input", "the input was rejected by the model's adversarial-input detector");
    case DetectionPolicy::Flag:
      ctx.flagged = true;
      ctx.decision = "flag";
      ctx.reason = "detector";
      break;
    default:
      break;
  }
  return FilterStatus::Continue;
}

FilterStatus MonitorFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  if (ctx.runtime->monitor) {
    if (ctx.runtime->sync) {
      // What the other replicas saw since, first: the verdict is over the whole history.
      try {
        for (auto& [key, x] : ctx.runtime->sync->exchange(ctx.key_id(), ctx.x)) ctx.runtime->monitor->observe(key, x);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::Io || !services_.server->state_fail_open) throw;
        spdlog::warn("fail open (state_fail = \"open\"): monitored without the other replicas' history: {}", e.what());
        if (services_.metrics) services_.metrics->count_action("fail_open");
      }
    }
    MonitorVerdict v = ctx.runtime->monitor->observe(ctx.key_id(), ctx.x);
    ctx.details["monitor"] = v.to_json();
    if (v.alert) {
      ctx.monitor_alert = true;
      ctx.flagged = true;
      ctx.decision = "flag";
      ctx.reason = ctx.reason.empty() ? "monitor-" + v.source : ctx.reason + "+monitor-" + v.source;
      if (services_.metrics) services_.metrics->count_alert(cfg.name, "monitor-" + v.source);
    }
  }
  if (ctx.flagged) queue_for_review(ctx, services_);
  // With output policies, the policy filter records this request once the
  // answer is checked, so the response rules see its policy alert too.
  const bool policy_records = ctx.runtime->policy && !ctx.explainer;
  if (services_.responses && !policy_records) {
    auto actions = services_.responses->record(*ctx.runtime->slot, ctx.key_id(), ctx.detector_alert, ctx.monitor_alert);
    if (!actions.empty()) ctx.details["actions"] = actions;
  }
  return FilterStatus::Continue;
}

}  // namespace aegis::serve
