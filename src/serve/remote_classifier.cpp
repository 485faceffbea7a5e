#include "aegis/serve/remote_classifier.h"

#include <torch/torch.h>

#include <filesystem>
#include <mutex>

#include "aegis/core/error.h"
#include "aegis/serve/internal/httplib.h"

namespace aegis::serve {

struct RemoteClassifier::Impl {
  explicit Impl(const std::string& url) : client(url) {}
  httplib::Client client;
  std::mutex mu;  // httplib::Client is not for concurrent use
  httplib::Headers headers;
};

namespace {

// Throws the aegis error that matches an HTTP failure, with the server's
// reason.
[[noreturn]] void throw_http(const httplib::Result& res, const std::string& what) {
  if (!res)
    AEGIS_FAIL(Io, what << ": no response (connection failed or timed out, httplib error "
                        << static_cast<int>(res.error()) << ")");
  std::string msg = res->body.substr(0, 300);
  try {
    auto j = nlohmann::json::parse(res->body);
    if (j.contains("error")) msg = j["error"].get<std::string>();
  } catch (...) {
  }
  const int s = res->status;
  const ErrorKind kind = s == 401   ? ErrorKind::Unauthenticated
                         : s == 403 ? ErrorKind::PermissionDenied
                         : s == 404 ? ErrorKind::NotFound
                         : s == 429 ? ErrorKind::RateLimited
                         : s < 500  ? ErrorKind::InvalidArgument
                                    : ErrorKind::Io;
  throw Error(kind, what + ": HTTP " + std::to_string(s) + ": " + msg);
}

}  // namespace

RemoteClassifier::RemoteClassifier(ModelMeta meta, RemoteOptions options, std::unique_ptr<Impl> impl)
    : Classifier(std::move(meta)), options_(std::move(options)), impl_(std::move(impl)) {}

RemoteClassifier::~RemoteClassifier() = default;

std::shared_ptr<RemoteClassifier> RemoteClassifier::connect(const RemoteOptions& o) {
  AEGIS_CHECK(o.batch_size_ >= 1, InvalidArgument, "batch_size must be >= 1");
  auto impl = std::make_unique<Impl>(o.url_);
  AEGIS_CHECK(impl->client.is_valid(), InvalidArgument, "not a usable URL: " << o.url_);
  impl->client.set_connection_timeout(o.timeout_s_, 0);
  impl->client.set_read_timeout(o.timeout_s_, 0);
  impl->client.set_write_timeout(o.timeout_s_, 0);
  impl->client.set_keep_alive(true);
  impl->client.set_tcp_nodelay(true);
  if (o.url_.rfind("https://", 0) == 0) {
    impl->client.enable_server_certificate_verification(true);
    if (!o.ca_file_.empty()) {
      AEGIS_CHECK(std::filesystem::exists(o.ca_file_), NotFound, "CA file " << o.ca_file_ << " does not exist");
      impl->client.set_ca_cert_path(o.ca_file_.c_str());
    }
  } else {
    AEGIS_CHECK(o.ca_file_.empty(), InvalidArgument, "a CA file is for https:// URLs, got " << o.url_);
  }
  if (!o.api_key_.empty()) impl->headers.emplace("Authorization", "Bearer " + o.api_key_);
  auto res = impl->client.Get("/v2/models/" + o.model_, impl->headers);
  if (!res || res->status != 200) throw_http(res, "model metadata of '" + o.model_ + "'");
  ModelMeta meta;
  bool label_only = false;
  try {
    auto j = nlohmann::json::parse(res->body);
    auto shape = j.at("inputs").at(0).at("shape").get<std::vector<int64_t>>();
    AEGIS_CHECK(shape.size() >= 2, CorruptData, "model input shape has no sample dimensions");
    meta.input_shape.assign(shape.begin() + 1, shape.end());
    const auto& p = j.at("parameters");
    meta.num_classes = p.at("num_classes").get<int64_t>();
    meta.clip_min = p.value("clip_min", 0.0);
    meta.clip_max = p.value("clip_max", 1.0);
    meta.class_names = p.value("class_names", std::vector<std::string>{});
    if (p.contains("output")) label_only = p["output"].value("mode", "full") == "label";
    meta.architecture = "remote";
    meta.provenance = {{"url", o.url_}, {"model", o.model_}, {"versions", j.value("versions", nlohmann::json())}};
    meta.validate();
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "model metadata of '" << o.model_ << "' is malformed: " << e.what());
  }
  auto rc = std::shared_ptr<RemoteClassifier>(new RemoteClassifier(std::move(meta), o, std::move(impl)));
  rc->label_only_ = label_only;
  return rc;
}

torch::Tensor RemoteClassifier::query(const torch::Tensor& x) {
  torch::Tensor c = x.detach().to(torch::kFloat).contiguous().cpu();
  const float* d = c.data_ptr<float>();
  nlohmann::json body = {{"inputs",
                          {{{"name", "input"},
                            {"datatype", "FP32"},
                            {"shape", c.sizes().vec()},
                            {"data", std::vector<float>(d, d + c.numel())}}}}};
  std::lock_guard<std::mutex> lock(impl_->mu);  // one request at a time on this connection
  auto res =
      impl_->client.Post("/v2/models/" + options_.model_ + "/infer", impl_->headers, body.dump(), "application/json");
  ++requests_;
  if (!res || res->status != 200) throw_http(res, "inference on '" + options_.model_ + "'");
  const int64_t b = x.size(0), k = meta_.num_classes;
  try {
    auto j = nlohmann::json::parse(res->body);
    torch::Tensor logits;
    torch::Tensor labels;
    for (const auto& o : j.at("outputs")) {
      const std::string name = o.at("name");
      if (name == "scores") {
        auto v = o.at("data").get<std::vector<float>>();
        AEGIS_CHECK(static_cast<int64_t>(v.size()) == b * k, CorruptData, "scores have the wrong size");
        logits = torch::tensor(v).reshape({b, k}).clamp_min(1e-12).log();
      } else if (name == "label") {
        auto v = o.at("data").get<std::vector<int64_t>>();
        AEGIS_CHECK(static_cast<int64_t>(v.size()) == b, CorruptData, "labels have the wrong size");
        labels = torch::tensor(v, torch::kLong);
      }
    }
    if (logits.defined()) return logits;
    AEGIS_CHECK(labels.defined(), CorruptData, "the response has neither scores nor labels");
    // -1 is an abstained answer (the gateway's output policies): no class,
    // read as equal scores for every class, as its zeroed scores are.
    AEGIS_CHECK((labels >= -1).all().item<bool>() && (labels < k).all().item<bool>(), CorruptData,
                "the response has a label out of range");
    torch::Tensor answered = labels >= 0;
    torch::Tensor out = torch::full({b, k}, -30.0f).scatter_(1, labels.clamp_min(0).unsqueeze(1), 0.0f);
    return torch::where(answered.unsqueeze(1), out, torch::zeros_like(out));
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "malformed inference response: " << e.what());
  }
}

torch::Tensor RemoteClassifier::compute_logits(const torch::Tensor& x, bool grad) {
  AEGIS_CHECK(!grad, Unsupported, "a remote model has no gradients (black-box only)");
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += options_.batch_size_)
    parts.push_back(query(x.slice(0, i, std::min(x.size(0), i + options_.batch_size_))));
  return torch::cat(parts);
}

RemoteAnswers RemoteClassifier::answer(const torch::Tensor& x) {
  check_input(x);
  const int64_t b = x.size(0), k = meta_.num_classes;
  RemoteAnswers a;
  a.logits = torch::zeros({b, k});
  a.answered = torch::zeros({b}, torch::kBool);
  a.refused = torch::zeros({b}, torch::kBool);
  a.refusal_reasons.assign(size_t(b), "");
  for (int64_t i = 0; i < b; ++i) {
    count_queries(1);
    try {
      torch::Tensor z = query(x.slice(0, i, i + 1))[0];
      a.logits[i] = z;
      // An abstention comes back as equal scores for every class.
      a.answered[i] = (z.max() - z.min()).item<double>() > 1e-6;
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::InvalidArgument) {
        a.refused[i] = true;
        a.refusal_reasons[size_t(i)] = e.what();
        continue;
      }
      if (e.kind() == ErrorKind::PermissionDenied || e.kind() == ErrorKind::RateLimited ||
          e.kind() == ErrorKind::Unauthenticated) {
        a.blocked_at = i;
        a.blocked_reason = e.what();
        break;
      }
      throw;
    }
  }
  return a;
}

}  // namespace aegis::serve
