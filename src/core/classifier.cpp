#include "aegis/core/classifier.h"

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

namespace {
std::string shape_string(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

void Classifier::check_input(const torch::Tensor& x) const {
  AEGIS_CHECK(x.defined(), InvalidArgument, "input tensor is undefined");
  const auto& shape = meta_.input_shape;
  bool ok = x.dim() == int64_t(shape.size()) + 1;
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = x.size(i + 1) == shape[i];
  AEGIS_CHECK(ok, ShapeMismatch,
              "input shape " << shape_string(x.sizes()) << " does not match the model's [batch, "
                             << shape_string(shape).substr(1));
  AEGIS_CHECK(x.is_floating_point(), InvalidArgument, "input must be floating point, got " << x.dtype());
}

torch::Tensor Classifier::logits(const torch::Tensor& x) {
  check_input(x);
  torch::NoGradGuard no_grad;
  count_queries(x.size(0));
  return compute_logits(x, /*grad=*/false);
}

torch::Tensor Classifier::probabilities(const torch::Tensor& x) {
  return torch::softmax(logits(x), 1);
}

torch::Tensor Classifier::predict(const torch::Tensor& x) { return logits(x).argmax(1); }

torch::Tensor Classifier::forward(const torch::Tensor& x) {
  AEGIS_CHECK(has_gradients(), Unsupported, "this classifier is black-box: it has no gradients");
  check_input(x);
  count_queries(x.size(0));
  return compute_logits(x, /*grad=*/true);
}

std::pair<torch::Tensor, torch::Tensor> Classifier::loss_gradient(const torch::Tensor& x,
                                                                  const torch::Tensor& y) {
  torch::Tensor xg = x.detach().clone().requires_grad_(true);
  torch::Tensor per_sample;
  {
    torch::AutoGradMode enable(true);
    torch::Tensor out = forward(xg);
    per_sample = torch::nn::functional::cross_entropy(
        out, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    auto grads = torch::autograd::grad({per_sample.sum()}, {xg});
    return {per_sample.detach(), grads[0].detach()};
  }
}

}  // namespace aegis
