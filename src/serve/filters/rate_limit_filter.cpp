#include "aegis/serve/filters/rate_limit_filter.h"

#include <cmath>

namespace aegis::serve {

namespace {

FilterStatus too_many(RequestContext& ctx, const std::string& code, const std::string& what, double retry_after) {
  const bool never = !std::isfinite(retry_after);
  FilterStatus s = ctx.reject(
      429, code, never ? what + " (the request alone is larger than the burst allowed)" : what + "; retry later");
  if (!never) {
    const auto secs = static_cast<int64_t>(std::max(1.0, std::ceil(retry_after)));
    ctx.response.headers["Retry-After"] = std::to_string(secs);
    ctx.details["retry_after_s"] = secs;
  }
  return s;
}

}  // namespace

FilterStatus RateLimitFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  const std::string id = ctx.key_id();
  const double now = services_.clock->now();
  const double factor = services_.responses ? services_.responses->throttle_factor(id, cfg.name) : 1.0;
  auto scaled = [factor](RateLimit r) {
    r.rate *= factor;
    return r;
  };
  const double batch = static_cast<double>(ctx.cost > 0 ? ctx.cost : ctx.x.size(0));
  const std::string bucket = id + "|" + cfg.name;
  RateDecision d = services_.rates->acquire(bucket + "|req", scaled(cfg.rate.requests), 1.0, now);
  if (!d.allowed) return too_many(ctx, "rate_limited", "request rate limit exceeded", d.retry_after_s);
  d = services_.rates->acquire(bucket + "|samples", scaled(cfg.rate.samples), batch, now);
  if (!d.allowed) return too_many(ctx, "rate_limited", "sample rate limit exceeded", d.retry_after_s);
  if (cfg.rate.daily_samples > 0 &&
      !services_.rates->add_daily(bucket, utc_day(now), static_cast<int64_t>(batch), cfg.rate.daily_samples))
    return too_many(ctx, "quota_exceeded",
                    "daily sample quota of " + std::to_string(cfg.rate.daily_samples) + " exhausted",
                    seconds_to_next_utc_day(now));
  return FilterStatus::Continue;
}

}  // namespace aegis::serve
