#pragma once
/// Runtime adversarial-input detection: the model's Detector (hardening area,
/// loaded from the configured `model.pt.detector.json` or built by a
/// DetectorFactory) scores every sample; the model's policy decides:
///  - log:    scores go to the audit log only;
///  - flag:   a flagged request is answered, marked (`X-Aegis-Flagged`), and
///            put in the review queue;
///  - reject: a flagged request gets 422 and no prediction.
/// Alerts feed the response rules either way.
///
///   DetectionFilter det(services);

#include "aegis/serve/filter.h"

namespace aegis::serve {

class DetectionFilter : public Filter {
 public:
  explicit DetectionFilter(GatewayServices services) : services_(services) {}
  const char* name() const override { return "detection"; }
  FilterStatus on_request(RequestContext& ctx) override;

 private:
  const GatewayServices services_;
};

/// Query-pattern monitoring per key (query_monitor.h). An alert marks the
/// request, adds it to the review queue and feeds the response rules, which
/// run here for every request (so a quarantine applies from the next one).
class MonitorFilter : public Filter {
 public:
  explicit MonitorFilter(GatewayServices services) : services_(services) {}
  const char* name() const override { return "monitor"; }
  FilterStatus on_request(RequestContext& ctx) override;

 private:
  const GatewayServices services_;
};

}  // namespace aegis::serve
