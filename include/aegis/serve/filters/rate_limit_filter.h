#pragma once
/// Rate limits and quotas per key and model (rate_limit.h): requests/s and
/// samples/s through GCRA, a daily sample quota, all scaled by the throttle
/// factor the response engine may have set for the key. Refusals are 429
/// with `Retry-After` (whole seconds, at least 1) and nothing consumed.
///
///   RateLimitFilter rl(services);

#include "aegis/serve/filter.h"

namespace aegis::serve {

class RateLimitFilter : public Filter {
 public:
  explicit RateLimitFilter(GatewayServices services) : services_(services) {}
  const char* name() const override { return "rate_limit"; }
  FilterStatus on_request(RequestContext& ctx) override;

 private:
  const GatewayServices services_;
};

}  // namespace aegis::serve
