#pragma once
/// Prometheus metrics of the gateway, rendered as the text exposition format
/// at `GET /metrics`: request counts and latency histograms by model and
/// status, rejections by reason, detector and monitor alerts, batch sizes.
///
///   Metrics m;
///   m.observe_request("fmnist", 200, 0.004);
///   m.count_rejection("rate_limited");
///   std::string text = m.render();

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace aegis::serve {

class Metrics {
 public:
  void observe_request(const std::string& model, int status, double seconds);
  void count_rejection(const std::string& reason);
  void count_alert(const std::string& model, const std::string& source);
  void observe_batch(const std::string& model, int64_t size);
  void count_action(const std::string& action);

  /// Prometheus text exposition format (version 0.0.4).
  std::string render() const;

  /// For tests and benchmarks: a counter's value, 0 when absent.
  double requests(const std::string& model, int status) const;
  double rejections(const std::string& reason) const;
  double alerts(const std::string& model, const std::string& source) const;
  /// Batches run and samples in them.
  std::pair<int64_t, int64_t> batches(const std::string& model) const;
  int64_t largest_batch(const std::string& model) const;

 private:
  struct Histogram {
    std::vector<int64_t> counts;  // per bucket (non-cumulative)
    double sum = 0;
    int64_t count = 0;
  };
  static const std::vector<double>& latency_buckets();
  static const std::vector<double>& batch_buckets();
  static void observe(Histogram& h, const std::vector<double>& bounds, double v);

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, double> requests_;
  std::map<std::pair<std::string, int>, Histogram> latency_;
  std::map<std::string, double> rejections_;
  std::map<std::pair<std::string, std::string>, double> alerts_;
  std::map<std::string, Histogram> batch_;
  std::map<std::string, int64_t> largest_batch_;
  std::map<std::string, double> actions_;
};

}  // namespace aegis::serve
