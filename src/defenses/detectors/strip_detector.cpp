#include "aegis/defenses/detectors/strip_detector.h"

#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"
#include "defenses/detectors/tensor_codec.h"

namespace aegis {

STRIPDetector::STRIPDetector(ClassifierPtr model, torch::Tensor pool, STRIPOptions options)
    : model_(std::move(model)), pool_(std::move(pool)), o_(std::move(options)) {
  AEGIS_CHECK(model_ != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(o_.overlays_ >= 2, InvalidArgument, "STRIP: overlays must be >= 2, got " << o_.overlays_);
  AEGIS_CHECK(o_.blend_ == "add" || o_.blend_ == "mix", InvalidArgument,
              "STRIP: blend must be add or mix, got '" << o_.blend_ << "'");
  AEGIS_CHECK(o_.alpha_ > 0 && o_.alpha_ < 1, InvalidArgument, "STRIP: alpha must be in (0, 1), got " << o_.alpha_);
  AEGIS_CHECK(o_.batch_size_ >= 1, InvalidArgument, "STRIP: batch size must be >= 1");
  AEGIS_CHECK(pool_.defined() && pool_.dim() >= 2, InvalidArgument, "STRIP: no overlay pool");
  model_->check_input(pool_);
  AEGIS_CHECK(pool_.size(0) >= o_.overlays_, InvalidArgument,
              "STRIP: the pool has " << pool_.size(0) << " clean images, fewer than the " << o_.overlays_
                                     << " overlays per input");
  pool_ = pool_.to(torch::kFloat).contiguous();
  o_.pool_ = pool_.size(0);
}

std::unique_ptr<STRIPDetector> STRIPDetector::fit(ClassifierPtr model, const torch::Tensor& clean_x,
                                                  const STRIPOptions& o) {
  AEGIS_CHECK(clean_x.defined() && clean_x.dim() >= 2 && clean_x.size(0) >= o.pool_, InvalidArgument,
              "STRIP: the overlay pool needs " << o.pool_ << " clean inputs, got "
                                               << (clean_x.defined() && clean_x.dim() > 0 ? clean_x.size(0) : 0));
  return std::make_unique<STRIPDetector>(std::move(model), clean_x.slice(0, 0, o.pool_).clone(), o);
}

torch::Tensor STRIPDetector::blends(const torch::Tensor& x) const {
  const int64_t B = x.size(0), N = o_.overlays_, P = pool_.size(0);
  torch::Tensor overlays;  // [B, N, ...]
  std::vector<int64_t> shape = {B, N};
  for (int64_t d = 1; d < pool_.dim(); ++d) shape.push_back(pool_.size(d));
  if (P == N) {
    overlays = pool_.unsqueeze(0).expand(shape);
  } else {
    torch::Tensor idx = torch::rand({B, P}).argsort(1, false).slice(1, 0, N).reshape({-1});
    overlays = pool_.index_select(0, idx).reshape(shape);
  }
  std::vector<int64_t> one = {B, 1};
  for (int64_t d = 1; d < x.dim(); ++d) one.push_back(x.size(d));
  torch::Tensor xs = x.reshape(one);
  torch::Tensor mixed = o_.blend_ == "add"
                            ? torch::clamp(xs + overlays, model_->meta().clip_min, model_->meta().clip_max)
                            : (1 - o_.alpha_) * xs + o_.alpha_ * overlays;
  shape.erase(shape.begin());
  shape[0] = B * N;
  return mixed.reshape(shape);
}

torch::Tensor STRIPDetector::mean_entropy(const torch::Tensor& x, bool grad) {
  model_->check_input(x);
  const int64_t B = x.size(0), N = o_.overlays_;
  const int64_t per = std::max<int64_t>(1, o_.batch_size_ / N);  // inputs per forward
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < B; i += per) {
    const int64_t j = std::min(i + per, B);
    torch::Tensor blended = blends(x.slice(0, i, j));
    torch::Tensor logits = grad ? model_->forward(blended) : model_->logits(blended);
    torch::Tensor logp = torch::log_softmax(logits.to(torch::kFloat), 1);
    torch::Tensor h = -(logp.exp() * logp).sum(1);  // [(j - i) * N]
    out.push_back(h.reshape({j - i, N}).mean(1));
  }
  return out.empty() ? torch::zeros({0}) : torch::cat(out);
}

torch::Tensor STRIPDetector::score(const torch::Tensor& x) {
  torch::NoGradGuard g;
  return -mean_entropy(x, false);
}

torch::Tensor STRIPDetector::score_graph(const torch::Tensor& x) { return -mean_entropy(x, true); }

nlohmann::json STRIPDetector::state_json() const {
  nlohmann::json s = {{"overlays", o_.overlays_}, {"blend", o_.blend_}, {"alpha", o_.alpha_}};
  detector_internal::put_f32(s, "pool", pool_);
  return s;
}

std::unique_ptr<Detector> STRIPDetector::from_state(const nlohmann::json& s, ClassifierPtr model) {
  STRIPOptions o;
  try {
    o.overlays(s.at("overlays").get<int64_t>()).blend(s.at("blend").get<std::string>()).alpha(s.at("alpha").get<double>());
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "STRIP detector state: " << e.what());
  }
  torch::Tensor pool = detector_internal::get_f32(s, "pool", "STRIP detector overlay pool");
  try {
    return std::make_unique<STRIPDetector>(std::move(model), pool, o);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::ShapeMismatch) throw;
    AEGIS_FAIL(CorruptData, "STRIP detector state: " << e.what());
  }
}

}  // namespace aegis
