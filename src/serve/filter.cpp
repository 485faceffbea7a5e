#include "aegis/serve/filter.h"

#include "aegis/serve/filters/explain_filter.h"

namespace aegis::serve {

std::string HttpRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

FilterStatus RequestContext::reject(int status, const std::string& code, const std::string& message) {
  response.status = status;
  response.content_type = "application/json";
  response.body = nlohmann::json{{"error", message}, {"reason", code}}.dump();
  decision = "reject";
  reason = code;
  return FilterStatus::Stop;
}

void queue_for_review(RequestContext& ctx, const GatewayServices& services) {
  if (ctx.reviewed || !services.responses) return;
  const int64_t id = services.responses->add_review({{"key_id", ctx.key_id()},
                                                     {"model", ctx.runtime->config().name},
                                                     {"request_id", ctx.request.id},
                                                     {"endpoint", ctx.explainer ? "explain" : "infer"},
                                                     {"reason", ctx.reason},
                                                     {"details", ctx.details},
                                                     {"evidence", review_evidence(ctx)}});
  ctx.details["review_id"] = id;
  ctx.reviewed = true;
}

}  // namespace aegis::serve
