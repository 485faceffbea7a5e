#include "aegis/serve/filters/inference_filter.h"

#include <torch/torch.h>

namespace aegis::serve {

FilterStatus InferenceFilter::on_request(RequestContext& ctx) {
  ctx.model = ctx.runtime->slot->current();  // held until the response is built
  ctx.probs = ctx.model->batcher->submit(ctx.x);
  ctx.details["model_version"] = ctx.model->version;
  if (ctx.model->is_fallback) ctx.details["fallback"] = true;
  return FilterStatus::Continue;
}

FilterStatus OutputFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  HardenedOutput out;
  {
    std::lock_guard<std::mutex> lock(ctx.runtime->rng_mu);
    out = harden_output(ctx.probs, cfg.output, ctx.runtime->rng);
  }
  std::vector<int64_t> abstained;
  if (ctx.abstain.defined()) {
    // An abstained sample is answered "uncertain": no class, no scores.
    torch::Tensor a = ctx.abstain.nonzero().flatten();
    abstained.assign(a.data_ptr<int64_t>(), a.data_ptr<int64_t>() + a.numel());
    out.labels.index_fill_(0, a, -1);
    if (out.scores.defined()) out.scores.index_fill_(0, a, 0);
    if (out.classes.defined()) out.classes.index_fill_(0, a, -1);
  }
  const nlohmann::json outputs = ctx.request.select_outputs(out.to_json_outputs());
  nlohmann::json body = {{"model_name", cfg.name}, {"model_version", ctx.model->version}, {"outputs", outputs}};
  if (!ctx.request.id.empty()) body["id"] = ctx.request.id;
  nlohmann::json params = {{"output", cfg.output.to_json()}};
  if (ctx.flagged) params["flagged"] = true;
  if (!abstained.empty()) {
    params["abstained"] = abstained;
    ctx.details["abstained"] = abstained;
  }
  body["parameters"] = params;
  ctx.response.status = 200;
  ctx.response.body = body.dump();
  if (ctx.flagged) ctx.response.headers["X-Aegis-Flagged"] = ctx.reason;
  return FilterStatus::Continue;
}

void AuditFilter::on_response(RequestContext& ctx) {
  if (!services_.audit) return;
  ctx.details["path"] = ctx.http.path.substr(0, 256);
  services_.audit->append(
      AuditEntry{"request", ctx.key_id(), ctx.model_name, ctx.decision, ctx.response.status, ctx.reason, ctx.details});
}

}  // namespace aegis::serve
