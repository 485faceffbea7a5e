#include "aegis/serve/filters/validation_filter.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>

#include "aegis/core/error.h"

namespace aegis::serve {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  return o.str() + "]";
}

}  // namespace

FilterStatus ValidationFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  const ModelMeta& meta = ctx.runtime->slot->current()->classifier->meta();
  try {
    ctx.request = parse_infer_request(ctx.http.body, limits_);
  } catch (const Error& e) {
    return ctx.reject(400, "bad_request", e.what());
  }
  auto& r = ctx.request;
  if (r.inputs.size() != 1) return ctx.reject(400, "bad_request", "the model takes exactly one input");
  const DecodedTensor& t = r.inputs[0];
  const int64_t numel = meta.input_numel();
  std::vector<int64_t> want = {-1};
  want.insert(want.end(), meta.input_shape.begin(), meta.input_shape.end());
  std::vector<int64_t> sample(t.shape.begin() + 1, t.shape.end());
  const bool exact = sample == meta.input_shape;
  const bool flat = sample.size() == 1 && sample[0] == numel;
  if (!exact && !flat)
    return ctx.reject(400, "bad_shape",
                      "input shape " + shape_str(t.shape) + " does not match the model's " + shape_str(want));
  const int64_t batch = t.shape[0];
  if (batch < 1) return ctx.reject(400, "bad_shape", "the batch is empty");
  if (batch > cfg.max_batch)
    return ctx.reject(413, "batch_too_large",
                      "batch of " + std::to_string(batch) + " is over the limit of " + std::to_string(cfg.max_batch));
  if (t.non_finite) return ctx.reject(400, "non_finite", "the input holds NaN or infinite values");
  for (const auto& o : r.outputs)
    if (std::find(outputs_.begin(), outputs_.end(), o) == outputs_.end())
      return ctx.reject(400, "bad_request", "unknown output '" + o.substr(0, 64) + "'");
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), meta.input_shape.begin(), meta.input_shape.end());
  torch::Tensor x = torch::from_blob(const_cast<float*>(t.data.data()), shape, torch::kFloat).clone();
  const double lo = x.min().item<double>(), hi = x.max().item<double>();
  if (lo < meta.clip_min || hi > meta.clip_max) {
    std::ostringstream o;
    o << "input values must lie in [" << meta.clip_min << ", " << meta.clip_max << "], got [" << lo << ", " << hi
      << "]";
    return ctx.reject(400, "out_of_range", o.str());
  }
  ctx.x = x;
  ctx.details["batch"] = batch;
  return FilterStatus::Continue;
}

}  // namespace aegis::serve
