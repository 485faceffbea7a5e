#include "aegis/serve/filters/auth_filter.h"

namespace aegis::serve {

FilterStatus AuthFilter::on_request(RequestContext& ctx) {
  std::string key = ctx.http.header("x-api-key");
  const std::string auth = ctx.http.header("authorization");
  if (key.empty() && auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
  if (key.empty()) return ctx.reject(401, "missing_key", "an API key is required (Authorization: Bearer <key>)");
  auto rec = services_.keys->lookup(key);
  if (!rec) {
    // Say which key id was tried (when the format is right), never the key.
    ctx.details["tried_key_id"] = key_id_of(key);
    return ctx.reject(401, "unknown_key", "the API key is not valid");
  }
  ctx.key = rec;
  if (rec->revoked) return ctx.reject(401, "revoked_key", "the API key has been revoked");
  if (!roles_.count(rec->role))
    return ctx.reject(403, "role_not_allowed",
                      std::string("a key with role '") + role_name(rec->role) + "' may not do this");
  if (check_model_ && !ctx.model_name.empty() && !rec->may_use(ctx.model_name))
    return ctx.reject(403, "model_not_allowed", "the API key may not use model '" + ctx.model_name + "'");
  if (services_.responses && services_.responses->quarantined(rec->id))
    return ctx.reject(403, "quarantined", "the API key is quarantined; an admin must release it");
  return FilterStatus::Continue;
}

}  // namespace aegis::serve
