#pragma once
/// RemoteClassifier: a model behind an aegis gateway (or any Open Inference
/// Protocol v2 server that returns "scores" or "label") as a black-box
/// Classifier, so every black-box attack and the audit can target a served
/// model through its API, with its key. No gradients; every sample sent is
/// a counted query. With a label-only endpoint the logits are 0 for the
/// returned class and -30 for the others (a decision, not a score).
///
///   auto remote =
///   RemoteClassifier::connect(RemoteOptions("http://127.0.0.1:8080",
///   "fmnist").api_key(key)); torch::Tensor p = remote->probabilities(x);   //
///   one HTTP request per `batch_size` samples remote->queries(); // samples
///   sent so far

#include <memory>
#include <string>
#include <vector>

#include "aegis/core/classifier.h"

namespace aegis::serve {

struct RemoteOptions {
  RemoteOptions(std::string url, std::string model) : url_(std::move(url)), model_(std::move(model)) {}
  std::string url_;    ///< "http://host:port" or "https://host:port"
  std::string model_;  ///< model name on the server
  std::string api_key_;
  int64_t batch_size_ = 64;  ///< samples per HTTP request
  int timeout_s_ = 30;
  /// https: PEM file of the CA that signed the server's certificate (default:
  /// the system's CAs). The certificate and the host name are always verified.
  std::string ca_file_;
  RemoteOptions& ca_file(std::string v) {
    ca_file_ = std::move(v);
    return *this;
  }
  RemoteOptions& api_key(std::string v) {
    api_key_ = std::move(v);
    return *this;
  }
  RemoteOptions& batch_size(int64_t v) {
    batch_size_ = v;
    return *this;
  }
  RemoteOptions& timeout_s(int v) {
    timeout_s_ = v;
    return *this;
  }
};

/// What the gateway did with each sample of RemoteClassifier::answer().
struct RemoteAnswers {
  torch::Tensor logits;    ///< [B, k]: as logits() would give; zeros where there is no answer
  torch::Tensor answered;  ///< [B] bool: the gateway returned a class (not refused, not abstained)
  torch::Tensor refused;   ///< [B] bool: the request was refused (422: a detector or output policy)
  /// The key was cut off (401/403/429: quarantined, revoked, rate-limited)
  /// at this sample; it and the later ones were not asked.
  int64_t blocked_at = -1;
  std::string blocked_reason;
  std::vector<std::string> refusal_reasons;  ///< per sample, "" where answered
};

class RemoteClassifier : public Classifier {
 public:
  /// Reads the model's metadata (`GET /v2/models/{name}`) into ModelMeta.
  /// Throws Unauthenticated / PermissionDenied / NotFound / Io with the
  /// server's reason.
  static std::shared_ptr<RemoteClassifier> connect(const RemoteOptions& options);
  ~RemoteClassifier() override;

  bool has_gradients() const override { return false; }
  /// HTTP requests sent (each carries up to batch_size samples).
  int64_t requests() const { return requests_; }
  /// True when the server answers labels only.
  bool label_only() const { return label_only_; }
  /// One request per sample, and a refusal is an answer, not an error: what
  /// an attacker who watches the gateway's replies sees. Counts a query per
  /// sample sent.
  RemoteAnswers answer(const torch::Tensor& x);

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override;

 private:
  struct Impl;
  RemoteClassifier(ModelMeta meta, RemoteOptions options, std::unique_ptr<Impl> impl);
  torch::Tensor query(const torch::Tensor& x);

  RemoteOptions options_;
  std::unique_ptr<Impl> impl_;
  int64_t requests_ = 0;
  bool label_only_ = false;
};

}  // namespace aegis::serve
