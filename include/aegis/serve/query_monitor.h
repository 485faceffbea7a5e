#pragma once
/// Query-pattern monitoring per API key, against black-box evasion and model
/// extraction, which both need many related queries:
///  - the stateful detector of Chen, Carlini and Wagner (2020, "Stateful
///    Detection of Black-Box Adversarial Attacks"): the mean L2 distance of
///    each query to its k nearest neighbours among the key's recent queries;
///    a value below a threshold calibrated on benign traffic raises an alert
///    (and, as in the paper, clears that key's history). Distances here are
///    in input space, not in the paper's learned similarity encoder, so
///    attacks that move far between queries evade it more easily;
///  - PRADA (Juuti et al. 2019): the minimum distance of each query to the
///    key's earlier ones; natural queries give roughly normal minimum
///    distances, synthetic extraction queries do not. Once `prada_min_queries`
///    distances are collected, a Shapiro-Wilk W below `prada_delta` alerts.
///    (PRADA keeps one set per predicted class; this keeps one per key.)
/// Neither is a guarantee: a patient attacker spreading queries over many
/// keys, or far apart, is not seen. They raise the cost and leave a record.
///
///   QueryMonitor mon(MonitorOptions().k(20).knn_threshold(2.5));
///   MonitorVerdict v = mon.observe("key-id", x);   // x: [batch, ...]
///   if (v.alert) ...;

#include <torch/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aegis::serve {

struct MonitorOptions {
  int64_t k_ = 20;                   ///< neighbours of the stateful detector
  int64_t history_ = 1000;           ///< queries kept per key
  double knn_threshold_ = 0.0;       ///< alert below this mean k-NN distance; 0 = k-NN off
  bool prada_ = true;                ///< PRADA on
  int64_t prada_min_queries_ = 100;  ///< distances needed before testing
  int64_t prada_window_ = 500;       ///< most recent distances tested
  double prada_delta_ = 0.90;        ///< alert when W < delta
  MonitorOptions& k(int64_t v) {
    k_ = v;
    return *this;
  }
  MonitorOptions& history(int64_t v) {
    history_ = v;
    return *this;
  }
  MonitorOptions& knn_threshold(double v) {
    knn_threshold_ = v;
    return *this;
  }
  MonitorOptions& prada(bool v) {
    prada_ = v;
    return *this;
  }
  MonitorOptions& prada_min_queries(int64_t v) {
    prada_min_queries_ = v;
    return *this;
  }
  MonitorOptions& prada_window(int64_t v) {
    prada_window_ = v;
    return *this;
  }
  MonitorOptions& prada_delta(double v) {
    prada_delta_ = v;
    return *this;
  }
  /// Throws InvalidArgument for inconsistent values.
  void validate() const;
  nlohmann::json to_json() const;
};

struct MonitorVerdict {
  bool alert = false;
  std::string source;        ///< "knn", "prada" or "" when no alert
  double knn_distance = -1;  ///< smallest mean k-NN distance in the batch (-1: too few queries)
  double prada_w = -1;       ///< Shapiro-Wilk W of the key's min distances (-1: too few)
  int64_t queries = 0;       ///< queries seen from this key
  nlohmann::json to_json() const;
};

class QueryMonitor {
 public:
  explicit QueryMonitor(MonitorOptions options = {});
  /// Scores and records the samples of one request from `key`.
  MonitorVerdict observe(const std::string& key, const torch::Tensor& x);
  /// Forgets a key's history.
  void reset(const std::string& key);
  const MonitorOptions& options() const { return options_; }

 private:
  struct KeyState {
    std::deque<torch::Tensor> history;  // flattened float queries
    std::deque<double> min_distances;   // PRADA's D
    int64_t queries = 0;
  };
  MonitorOptions options_;
  std::mutex mu_;
  std::map<std::string, KeyState> keys_;
};

/// The k-NN threshold that flags about `fpr` of benign queries: the samples
/// of `benign` are streamed in order as one key's traffic and the `fpr`
/// quantile of their mean k-NN distances is returned.
double calibrate_knn_threshold(const torch::Tensor& benign, const MonitorOptions& options, double fpr);

/// Shapiro-Wilk W statistic (Royston 1992 approximation of the
/// coefficients), 3 <= n <= 5000. Near 1 for normal data.
double shapiro_wilk_w(std::vector<double> values);

}  // namespace aegis::serve
