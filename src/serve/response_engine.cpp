#include "aegis/serve/response_engine.h"

#include "aegis/core/error.h"

namespace aegis::serve {

void ResponseEngine::log_action(const std::string& action, const std::string& key, const std::string& model,
                                const std::string& reason, nlohmann::json details) {
  if (metrics_) metrics_->count_action(action);
  if (audit_) audit_->append(AuditEntry{"response", key, model, action, 0, reason, std::move(details)});
}

std::vector<std::string> ResponseEngine::record(ModelSlot& slot, const std::string& key, bool detector_alert,
                                                bool monitor_alert, bool policy_alert) {
  std::vector<std::string> taken;
  const ModelConfig& cfg = slot.config();
  std::vector<std::pair<const ResponseRule*, double>> fired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < cfg.rules.size(); ++i) {
      const ResponseRule& r = cfg.rules[i];
      bool alert = r.source == "detector"  ? detector_alert
                   : r.source == "monitor" ? monitor_alert
                   : r.source == "policy"  ? policy_alert
                                           : detector_alert || monitor_alert || policy_alert;
      const std::string window = key + "|" + cfg.name + "|" + std::to_string(i) + "|";
      const int64_t alerts = state_->push_window(window, alert, r.window);
      if (alerts < 0) continue;
      const double rate = static_cast<double>(alerts) / r.window;
      if (rate <= r.max_alert_rate) continue;
      state_->clear_windows(window);  // a fresh window before the rule can fire again
      fired.emplace_back(&r, rate);
      if (r.action == ResponseAction::Quarantine) state_->set_quarantined(key, true);
      if (r.action == ResponseAction::Throttle) {
        const std::string km = key + "|" + cfg.name;
        state_->set_throttle(km, state_->throttle(km) * r.throttle_factor);
      }
    }
  }
  for (auto [r, rate] : fired) {
    if (r->action == ResponseAction::Fallback) slot.use_fallback(true);
    const std::string action = response_action_name(r->action);
    taken.push_back(action);
    log_action(action, key, cfg.name, "alert rate over threshold", {{"rule", r->to_json()}, {"alert_rate", rate}});
  }
  return taken;
}

bool ResponseEngine::quarantined(const std::string& key) const { return state_->quarantined(key); }

void ResponseEngine::release(const std::string& key, const std::string& admin) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    AEGIS_CHECK(state_->quarantined(key), NotFound, "key '" << key << "' is not quarantined");
    state_->set_quarantined(key, false);
    state_->clear_windows(key + "|");
  }
  log_action("release", key, "", "released by admin " + admin, {{"admin", admin}});
}

double ResponseEngine::throttle_factor(const std::string& key, const std::string& model) const {
  return state_->throttle(key + "|" + model);
}

int64_t ResponseEngine::add_review(nlohmann::json item) {
  item["status"] = "pending";
  return state_->add_review(std::move(item));
}

nlohmann::json ResponseEngine::reviews(bool pending_only) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, item] : state_->reviews())
    if (!pending_only || item["status"] == "pending") out.push_back(item);
  return out;
}

void ResponseEngine::resolve_review(int64_t id, const std::string& decision, const std::string& admin) {
  AEGIS_CHECK(decision == "confirm" || decision == "dismiss", InvalidArgument,
              "review decision must be \"confirm\" or \"dismiss\"");
  nlohmann::json item;
  {
    std::lock_guard<std::mutex> lock(mu_);  // one resolution at a time
    const auto all = state_->reviews();
    auto it = all.find(id);
    AEGIS_CHECK(it != all.end(), NotFound, "no review item " << id);
    AEGIS_CHECK(it->second["status"] == "pending", InvalidArgument, "review item " << id << " is already resolved");
    item = it->second;
    item["status"] = decision == "confirm" ? "confirmed" : "dismissed";
    item["resolved_by"] = admin;
    state_->put_review(id, item);
  }
  log_action("review-" + decision, item.value("key_id", ""), item.value("model", ""), "review " + std::to_string(id),
             {{"review_id", id}, {"admin", admin}});
}

}  // namespace aegis::serve
