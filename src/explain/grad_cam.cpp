#include "aegis/explain/grad_cam.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"

namespace aegis {

namespace {

const char* kConvention =
    "gradcam needs the logits as a function of the model's feature maps: a TorchScript model with "
    "feature_maps(x) and head(h), where forward(x) == head(feature_maps(x)[-1]) (aegis's built-in "
    "architectures are such models)";

/// The index into `maps` the options name: the deepest spatial map by default.
int64_t pick_layer(const std::vector<torch::Tensor>& maps, const std::optional<int64_t>& layer) {
  const auto n = int64_t(maps.size());
  if (!layer) {
    for (int64_t i = n - 1; i >= 0; --i)
      if (maps[size_t(i)].dim() == 4) return i;
    AEGIS_FAIL(Unsupported, "gradcam needs a spatial feature map [batch, C, h, w]; none of the model's "
                                << n << " feature maps is one");
  }
  const int64_t i = *layer < 0 ? n + *layer : *layer;
  AEGIS_CHECK(i >= 0 && i < n, InvalidArgument,
              "gradcam: layer " << *layer << " does not exist: the model has " << n << " feature maps (0.." << n - 1
                                << ", or -1..-" << n << " from the end)");
  AEGIS_CHECK(maps[size_t(i)].dim() == 4, InvalidArgument,
              "gradcam needs a spatial feature map [batch, C, h, w]; feature map " << i << " has shape "
                                                                                   << maps[size_t(i)].sizes());
  return i;
}

}  // namespace

nlohmann::json GradCam::options_json() const {
  return {{"layer", o_.layer_ ? nlohmann::json(*o_.layer_) : nlohmann::json("last spatial")}, {"relu", o_.relu_}};
}

Attribution GradCam::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  auto* script = dynamic_cast<ScriptClassifier*>(&model);
  AEGIS_CHECK(script && script->has_feature_maps(), Unsupported,
              kConvention << "; this model defines no feature_maps()");
  auto head = script->module().find_method("head");
  AEGIS_CHECK(head.has_value(), Unsupported, kConvention << "; this model defines no head()");
  AEGIS_CHECK(x.dim() == 4, Unsupported,
              "gradcam explains images [batch, C, H, W]; this model takes samples of shape " << x.sizes().slice(1));

  torch::AutoGradMode grad_on(true);
  // Unoptimised, the TorchScript interpreter records each op on the autograd
  // tape, so a returned map is a link in the chain to the logits; the graph
  // executor's autodiff subgraphs would make it a side output with no path
  // from the head back through it.
  torch::jit::GraphOptimizerEnabledGuard plain_interpreter(false);
  torch::Tensor xg = x.detach().clone().requires_grad_(true);
  std::vector<torch::Tensor> maps = script->feature_maps(xg);
  const int64_t layer = pick_layer(maps, o_.layer_);
  const torch::Tensor& a = maps[size_t(layer)];
  c10::IValue out = (*head)({maps.back()});
  AEGIS_CHECK(out.isTensor() && out.toTensor().dim() == 2 && out.toTensor().size(0) == x.size(0), Unsupported,
              kConvention << "; head() does not return logits [batch, classes]");
  torch::Tensor logits = out.toTensor();
  {
    // The maps explain the model only if its forward is the head over them.
    torch::Tensor reference = model.logits(x);
    AEGIS_CHECK(
        logits.sizes() == reference.sizes() &&
            torch::allclose(logits.detach(), reference, 1e-4, 1e-4 * (1 + reference.abs().max().item<double>())),
        Unsupported, kConvention << "; this model's forward(x) differs from head(feature_maps(x)[-1])");
  }
  AEGIS_CHECK(a.requires_grad(), Unsupported,
              "gradcam: feature map " << layer << " does not depend on the input, so it explains nothing");
  torch::Tensor chosen = logits.gather(1, target.view({-1, 1})).sum();
  // Samples are independent: the gradient of the sum is each sample's own.
  torch::Tensor g = torch::autograd::grad({chosen}, {a}, {}, false, false, true)[0];
  AEGIS_CHECK(g.defined(), Unsupported,
              "gradcam: feature map " << layer << " does not feed the model's head, so its gradient is undefined");
  torch::NoGradGuard no_grad;
  torch::Tensor weights = g.mean({2, 3}, true);             // [B, C, 1, 1]
  torch::Tensor cam = (weights * a.detach()).sum(1, true);  // [B, 1, h, w]
  if (o_.relu_) cam = cam.clamp_min(0);
  cam = torch::nn::functional::interpolate(cam, torch::nn::functional::InterpolateFuncOptions()
                                                    .size(std::vector<int64_t>{x.size(2), x.size(3)})
                                                    .mode(torch::kBilinear)
                                                    .align_corners(false));
  if (o_.relu_) cam = cam.clamp_min(0);  // bilinear weights are >= 0; this only guards -0 and rounding
  Attribution r;
  r.values = cam.expand_as(x).contiguous().to(torch::kFloat);
  return r;
}

}  // namespace aegis
