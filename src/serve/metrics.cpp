#include "aegis/serve/metrics.h"

#include <algorithm>
#include <sstream>

namespace aegis::serve {

namespace {

// Label values are escaped as the exposition format asks.
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"')
      o += '\\', o += c;
    else if (c == '\n')
      o += "\\n";
    else
      o += c;
  }
  return o;
}

}  // namespace

const std::vector<double>& Metrics::latency_buckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return b;
}

const std::vector<double>& Metrics::batch_buckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  return b;
}

void Metrics::observe(Histogram& h, const std::vector<double>& bounds, double v) {
  if (h.counts.empty()) h.counts.assign(bounds.size() + 1, 0);
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
  ++h.counts[i];
  h.sum += v;
  ++h.count;
}

void Metrics::observe_request(const std::string& model, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{model, status}] += 1;
  observe(latency_[{model, status}], latency_buckets(), seconds);
}

void Metrics::count_rejection(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  rejections_[reason] += 1;
}

void Metrics::count_alert(const std::string& model, const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  alerts_[{model, source}] += 1;
}

void Metrics::observe_batch(const std::string& model, int64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  observe(batch_[model], batch_buckets(), static_cast<double>(size));
  largest_batch_[model] = std::max(largest_batch_[model], size);
}

void Metrics::count_action(const std::string& action) {
  std::lock_guard<std::mutex> lock(mu_);
  actions_[action] += 1;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  auto hist = [&](const std::string& name, const std::string& labels, const Histogram& h,
                  const std::vector<double>& bounds) {
    int64_t cum = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cum += h.counts[i];
      o << name << "_bucket{" << labels << ",le=\"" << bounds[i] << "\"} " << cum << "\n";
    }
    o << name << "_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
    o << name << "_sum{" << labels << "} " << h.sum << "\n" << name << "_count{" << labels << "} " << h.count << "\n";
  };
  o << "# HELP aegis_requests_total Inference and admin requests by model and HTTP status.\n"
    << "# TYPE aegis_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    o << "aegis_requests_total{model=\"" << esc(k.first) << "\",status=\"" << k.second << "\"} " << v << "\n";
  o << "# HELP aegis_request_duration_seconds Time from request to response.\n"
    << "# TYPE aegis_request_duration_seconds histogram\n";
  for (const auto& [k, h] : latency_)
    hist("aegis_request_duration_seconds", "model=\"" + esc(k.first) + "\",status=\"" + std::to_string(k.second) + "\"",
         h, latency_buckets());
  o << "# HELP aegis_rejections_total Requests refused, by reason.\n# TYPE aegis_rejections_total counter\n";
  for (const auto& [k, v] : rejections_) o << "aegis_rejections_total{reason=\"" << esc(k) << "\"} " << v << "\n";
  o << "# HELP aegis_alerts_total Detector and query-monitor alerts.\n# TYPE aegis_alerts_total counter\n";
  for (const auto& [k, v] : alerts_)
    o << "aegis_alerts_total{model=\"" << esc(k.first) << "\",source=\"" << esc(k.second) << "\"} " << v << "\n";
  o << "# HELP aegis_batch_size Samples per model forward.\n# TYPE aegis_batch_size histogram\n";
  for (const auto& [k, h] : batch_) hist("aegis_batch_size", "model=\"" + esc(k) + "\"", h, batch_buckets());
  o << "# HELP aegis_response_actions_total Automated responses taken.\n"
    << "# TYPE aegis_response_actions_total counter\n";
  for (const auto& [k, v] : actions_) o << "aegis_response_actions_total{action=\"" << esc(k) << "\"} " << v << "\n";
  return o.str();
}

double Metrics::requests(const std::string& model, int status) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find({model, status});
  return it == requests_.end() ? 0 : it->second;
}

double Metrics::rejections(const std::string& reason) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rejections_.find(reason);
  return it == rejections_.end() ? 0 : it->second;
}

double Metrics::alerts(const std::string& model, const std::string& source) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = alerts_.find({model, source});
  return it == alerts_.end() ? 0 : it->second;
}

std::pair<int64_t, int64_t> Metrics::batches(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = batch_.find(model);
  if (it == batch_.end()) return {0, 0};
  return {it->second.count, static_cast<int64_t>(it->second.sum)};
}

int64_t Metrics::largest_batch(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = largest_batch_.find(model);
  return it == largest_batch_.end() ? 0 : it->second;
}

}  // namespace aegis::serve
