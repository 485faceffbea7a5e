#include "aegis/privacy/per_sample_grad.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/group_norm.h>
#include <ATen/ops/im2col.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/rand.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "aegis/core/error.h"
#include "aegis/privacy/clipping.h"

namespace aegis {

namespace jit = torch::jit;

namespace internal {

/// One node of the rewritten graph whose parameters get per-sample gradients.
struct ProbedLayer {
  c10::Symbol kind;
  std::string label;           // "aten::linear(fc1_weight, fc1_bias)"
  int weight = -1, bias = -1;  // parameter indices, -1 when not a parameter
  // conv2d
  std::vector<int64_t> stride, padding, dilation, kernel;
  int64_t groups = 1;
  // group_norm / layer_norm
  int64_t num_groups = 1;
  std::vector<int64_t> normalized_shape;
  double eps = 1e-5;
  std::vector<int64_t> out_shape;  // output shape without the batch dimension, found on first use
};

struct PerSampleGraph {
  std::shared_ptr<jit::Graph> graph;
  std::unique_ptr<jit::Code> code;
  std::vector<ProbedLayer> layers;
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
  bool shapes_known = false;
};

}  // namespace internal

namespace {

using internal::ProbedLayer;

std::vector<int64_t> batched_shape(int64_t batch, const torch::Tensor& p) {
  std::vector<int64_t> shape = {batch};
  for (int64_t s : p.sizes()) shape.push_back(s);
  return shape;
}

std::string node_kind(const jit::Node* n) { return n->kind().toQualString(); }

/// Tensor or Optional[Tensor] (nn.Conv2d's and nn.Linear's bias are typed Optional).
bool is_tensor_type(c10::TypePtr t) {
  if (auto opt = t->cast<c10::OptionalType>()) t = opt->getElementType();
  return t->isSubtypeOf(*c10::TensorType::get());
}

/// "a.b.c" for a chain of prim::GetAttr from the module's self; nullopt otherwise.
std::optional<std::string> attribute_path(jit::Value* v, jit::Value* self) {
  std::vector<std::string> parts;
  while (v != self) {
    jit::Node* n = v->node();
    if (n->kind() != c10::prim::GetAttr) return std::nullopt;
    parts.push_back(n->s(c10::attr::name));
    v = n->input(0);
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += (out.empty() ? "" : ".") + *it;
  return out;
}

std::vector<int64_t> constant_ints(jit::Value* v, size_t expand, const std::string& what) {
  std::vector<int64_t> out;
  if (auto iv = jit::toIValue(v)) {
    if (iv->isInt())
      out = {iv->toInt()};
    else if (iv->isIntList())
      out = iv->toIntVector();
  } else if (v->node()->kind() == c10::prim::ListConstruct) {
    for (jit::Value* e : v->node()->inputs()) {
      auto ev = jit::toIValue(e);
      AEGIS_CHECK(ev && ev->isInt(), Unsupported, what << " must be a constant for per-sample gradients");
      out.push_back(ev->toInt());
    }
  }
  AEGIS_CHECK(!out.empty(), Unsupported, what << " must be a constant for per-sample gradients");
  if (out.size() == 1 && expand > 1) out.assign(expand, out[0]);
  return out;
}

double constant_double(jit::Value* v, const std::string& what) {
  auto iv = jit::toIValue(v);
  AEGIS_CHECK(iv && (iv->isDouble() || iv->isInt()), Unsupported,
              what << " must be a constant for per-sample gradients");
  return iv->isDouble() ? iv->toDouble() : double(iv->toInt());
}

bool is_batch_norm(const jit::Node* n) {
  static const std::vector<std::string> kinds = {"aten::batch_norm", "aten::native_batch_norm",
                                                 "aten::_batch_norm_impl_index", "aten::cudnn_batch_norm"};
  return std::find(kinds.begin(), kinds.end(), node_kind(n)) != kinds.end();
}

void refuse_batch_norm(jit::Block* b) {
  for (jit::Node* n : b->nodes()) {
    if (is_batch_norm(n)) {
      std::string name = "a batch norm layer";
      if (n->inputs().size() > 1)
        if (auto p = attribute_path(n->input(1), n->owningGraph()->inputs()[0])) name = "batch norm '" + *p + "'";
      AEGIS_FAIL(Unsupported, "DP-SGD cannot train "
                                  << name
                                  << ": batch norm mixes the samples of a batch, so per-sample gradients do not "
                                     "exist; replace it with GroupNorm (torch.nn.GroupNorm; for the built-in "
                                     "resnet use --arch resnet-gn)");
    }
    for (jit::Block* sub : n->blocks()) refuse_batch_norm(sub);
  }
}

/// Which input positions of a supported node may hold its weight and bias.
std::optional<std::pair<size_t, size_t>> parameter_slots(const jit::Node* n) {
  const std::string k = node_kind(n);
  if (k == "aten::linear" || k == "aten::conv2d" || k == "aten::_convolution")  // _convolution: traced models
    return std::make_pair(size_t{1}, size_t{2});
  if (k == "aten::group_norm" || k == "aten::layer_norm") return std::make_pair(size_t{2}, size_t{3});
  return std::nullopt;
}

torch::Tensor sum_except_first_two(const torch::Tensor& t) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < t.dim(); ++d) dims.push_back(d);
  return dims.empty() ? t : t.sum(dims);
}

/// Per-sample weight and bias gradients of one layer from its input activation
/// `a` and the per-sample gradient `g` of its output.
std::pair<torch::Tensor, torch::Tensor> layer_grads(const ProbedLayer& l, const torch::Tensor& a,
                                                    const torch::Tensor& g) {
  const int64_t B = g.size(0);
  const std::string k = l.kind.toQualString();
  torch::Tensor gw, gb;
  if (k == "aten::linear") {
    torch::Tensor a3 = a.reshape({B, -1, a.size(-1)});
    torch::Tensor g3 = g.reshape({B, -1, g.size(-1)});
    if (l.weight >= 0) gw = torch::bmm(g3.transpose(1, 2), a3);
    if (l.bias >= 0) gb = g3.sum(1);
  } else if (k == "aten::conv2d" || k == "aten::_convolution") {
    AEGIS_CHECK(a.dim() == 4, Unsupported, l.label << ": per-sample gradients need batched [B, C, H, W] input");
    const int64_t cin = a.size(1), cout = g.size(1), G = l.groups;
    if (l.weight >= 0) {
      const int64_t kh = l.kernel[0], kw = l.kernel[1];
      torch::Tensor cols = at::im2col(a, {kh, kw}, l.dilation, l.padding, l.stride);  // [B, cin*kh*kw, L]
      const int64_t L = cols.size(2);
      cols = cols.view({B, G, cin / G * kh * kw, L});
      torch::Tensor gg = g.reshape({B, G, cout / G, L});
      gw = gg.matmul(cols.transpose(-1, -2)).reshape({B, cout, cin / G, kh, kw});
    }
    if (l.bias >= 0) gb = g.reshape({B, cout, -1}).sum(2);
  } else if (k == "aten::group_norm") {
    if (l.weight >= 0) {
      torch::Tensor xhat = at::group_norm(a, l.num_groups, {}, {}, l.eps, false);
      gw = sum_except_first_two(g * xhat);
    }
    if (l.bias >= 0) gb = sum_except_first_two(g);
  } else {  // aten::layer_norm: the parameters have the normalised shape
    const int64_t lead = a.dim() - int64_t(l.normalized_shape.size());
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < lead; ++d) dims.push_back(d);
    auto reduce = [&](const torch::Tensor& t) { return dims.empty() ? t : t.sum(dims); };
    if (l.weight >= 0) gw = reduce(g * at::layer_norm(a, l.normalized_shape, {}, {}, l.eps, false));
    if (l.bias >= 0) gb = reduce(g);
  }
  return {gw, gb};
}

}  // namespace

PerSampleGradient::PerSampleGradient(ScriptClassifier& model) : model_(model), graph_(new internal::PerSampleGraph) {
  jit::Module& module = model.module();
  std::map<std::string, int> index;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    index[p.name] = int(graph_->names.size());
    graph_->names.push_back(p.name);
    graph_->params.push_back(p.value);
  }
  auto method = module.find_method("forward");
  AEGIS_CHECK(method.has_value(), Unsupported, "the model has no forward method");
  std::shared_ptr<jit::Graph> g = method->graph()->copy();
  jit::Inline(*g);
  AEGIS_CHECK(
      g->inputs().size() == 2, Unsupported,
      "per-sample gradients need forward(x) with one input; this model's forward takes " << g->inputs().size() - 1);
  jit::Value* self = g->inputs()[0];
  refuse_batch_norm(g->block());

  // Parameter values: the outputs of GetAttr chains that name a parameter.
  std::map<jit::Value*, int> param_of;
  std::function<void(jit::Block*)> find_params = [&](jit::Block* b) {
    for (jit::Node* n : b->nodes()) {
      if (n->kind() == c10::prim::GetAttr && is_tensor_type(n->output()->type())) {
        if (auto path = attribute_path(n->output(), self)) {
          auto it = index.find(*path);
          if (it != index.end()) param_of[n->output()] = it->second;
        }
      }
      for (jit::Block* sub : n->blocks()) find_params(sub);
    }
  };
  find_params(g->block());

  // Every use of a parameter must be a supported slot of a supported node at the top level.
  std::vector<jit::Node*> nodes;
  for (auto& [value, p] : param_of) {
    for (const jit::Use& u : value->uses()) {
      jit::Node* n = u.user;
      const std::string& name = graph_->names[p];
      auto slots = parameter_slots(n);
      AEGIS_CHECK(slots && (u.offset == slots->first || u.offset == slots->second), Unsupported,
                  "DP-SGD cannot compute per-sample gradients for parameter '"
                      << name << "' used by " << node_kind(n)
                      << "; supported layers are linear, conv2d, group_norm and layer_norm (a parameter must be "
                         "passed to them directly)");
      AEGIS_CHECK(n->owningBlock() == g->block(), Unsupported,
                  "DP-SGD cannot compute per-sample gradients for parameter '"
                      << name << "': it is used by " << node_kind(n) << " inside control flow (if/loop)");
      if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
    }
  }
  std::sort(nodes.begin(), nodes.end(), [](jit::Node* a, jit::Node* b) { return a->isBefore(b); });

  std::vector<jit::Value*> acts, raw;
  for (size_t i = 0; i < nodes.size(); ++i) {
    jit::Node* n = nodes[i];
    ProbedLayer l;
    l.kind = n->kind();
    auto slots = *parameter_slots(n);
    auto pick = [&](size_t slot) {
      auto it = param_of.find(n->input(slot));
      return it == param_of.end() ? -1 : it->second;
    };
    l.weight = pick(slots.first);
    l.bias = pick(slots.second);
    std::ostringstream label;
    label << node_kind(n) << "(" << (l.weight >= 0 ? graph_->names[l.weight] : "-") << ", "
          << (l.bias >= 0 ? graph_->names[l.bias] : "-") << ")";
    l.label = label.str();
    AEGIS_CHECK(param_of.find(n->input(0)) == param_of.end(), Unsupported,
                l.label << ": a parameter as the layer's input is not supported");
    const std::string k = node_kind(n);
    if (k == "aten::conv2d") {
      AEGIS_CHECK(n->input(4)->type()->kind() == c10::TypeKind::ListType, Unsupported,
                  l.label << ": string padding ('same', 'valid') is not supported; give the padding as numbers");
      l.stride = constant_ints(n->input(3), 2, l.label + " stride");
      l.padding = constant_ints(n->input(4), 2, l.label + " padding");
      l.dilation = constant_ints(n->input(5), 2, l.label + " dilation");
      l.groups = constant_ints(n->input(6), 1, l.label + " groups")[0];
      if (l.weight >= 0) {
        const auto& w = graph_->params[l.weight];
        l.kernel = {w.size(2), w.size(3)};
      }
    } else if (k == "aten::_convolution") {  // what torch.jit.trace records for nn.Conv2d
      auto transposed = jit::toIValue(n->input(6));
      AEGIS_CHECK(transposed && transposed->isBool() && !transposed->toBool(), Unsupported,
                  l.label << ": transposed convolutions are not supported");
      AEGIS_CHECK(l.weight >= 0 && graph_->params[l.weight].dim() == 4, Unsupported,
                  l.label << ": only 2-D convolutions (a [out, in, kh, kw] weight parameter) are supported");
      l.stride = constant_ints(n->input(3), 2, l.label + " stride");
      l.padding = constant_ints(n->input(4), 2, l.label + " padding");
      l.dilation = constant_ints(n->input(5), 2, l.label + " dilation");
      l.groups = constant_ints(n->input(8), 1, l.label + " groups")[0];
      const auto& w = graph_->params[l.weight];
      l.kernel = {w.size(2), w.size(3)};
    } else if (k == "aten::group_norm") {
      l.num_groups = constant_ints(n->input(1), 1, l.label + " num_groups")[0];
      l.eps = constant_double(n->input(4), l.label + " eps");
    } else if (k == "aten::layer_norm") {
      l.normalized_shape = constant_ints(n->input(1), 1, l.label + " normalized_shape");
      l.eps = constant_double(n->input(4), l.label + " eps");
    }
    // out' = out + probe_i; every later use of out reads out'.
    jit::Value* probe = g->addInput("probe" + std::to_string(i))->setType(c10::TensorType::get());
    jit::Value* out = n->output();
    jit::Value* added;
    {
      jit::WithInsertPoint guard(n->next());
      added = g->insert(c10::aten::add, {out, probe});
    }
    out->replaceAllUsesAfterNodeWith(added->node(), added);
    acts.push_back(n->input(0));
    raw.push_back(out);
    graph_->layers.push_back(std::move(l));
  }
  std::vector<jit::Value*> outs = {g->outputs()[0]};  // the logits, read through the probes
  outs.insert(outs.end(), acts.begin(), acts.end());
  outs.insert(outs.end(), raw.begin(), raw.end());
  {
    jit::WithInsertPoint guard(g->return_node());
    jit::Value* tuple = g->insertNode(g->createTuple(outs))->output();
    g->eraseOutput(0);
    g->registerOutput(tuple);
  }
  graph_->graph = g;
  graph_->code = std::make_unique<jit::Code>(g, "aegis_per_sample_forward");
  check_against_autograd();
}

void PerSampleGradient::check_against_autograd() {
  // Two synthetic samples in the valid range (no training data is touched),
  // dropout off: the per-sample gradients must add up to autograd's batch
  // gradient for every parameter, which catches a parameter that reaches the
  // loss by a path the analysis did not see (it would get no per-sample
  // gradient, and so no clipping).
  const ModelMeta& meta = model_.meta();
  if (meta.input_shape.empty() || meta.num_classes < 2) return;
  jit::Module& module = model_.module();
  const bool was_training = module.is_training();
  module.train(false);
  std::vector<int64_t> shape = {2};
  shape.insert(shape.end(), meta.input_shape.begin(), meta.input_shape.end());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20250101);
  torch::Tensor x = torch::rand(shape, gen) * (meta.clip_max - meta.clip_min) + meta.clip_min;
  torch::Tensor y = torch::tensor({int64_t{0}, int64_t{1}});
  std::vector<torch::Tensor> reference;
  PerSampleGrads got;
  try {
    got = compute(x, y);
    std::vector<bool> required;
    for (auto& p : graph_->params) required.push_back(p.requires_grad());
    for (auto& p : graph_->params) p.requires_grad_(true);
    torch::Tensor logits = module.forward({prepare(x)}).toTensor();
    torch::Tensor loss = at::cross_entropy_loss(logits, y.to(logits.device()), {}, at::Reduction::Sum);
    reference = torch::autograd::grad({loss}, graph_->params, {}, false, false, /*allow_unused=*/true);
    for (size_t i = 0; i < graph_->params.size(); ++i) graph_->params[i].requires_grad_(required[i]);
  } catch (...) {
    module.train(was_training);
    graph_->shapes_known = false;
    throw;
  }
  module.train(was_training);
  graph_->shapes_known = false;  // found again at the caller's batch size
  torch::NoGradGuard ng;
  for (size_t i = 0; i < reference.size(); ++i) {
    torch::Tensor ref = reference[i].defined() ? reference[i] : torch::zeros_like(graph_->params[i]);
    torch::Tensor sum = got.grads[i].sum(0);
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    AEGIS_CHECK((sum - ref).abs().max().item<double>() <= 1e-3 * scale, Unsupported,
                "DP-SGD cannot compute per-sample gradients for parameter '"
                    << graph_->names[i]
                    << "': it reaches the loss through operations aegis does not recognise (supported: linear, "
                       "conv2d, group_norm, layer_norm taking the parameter directly)");
  }
}

torch::Tensor PerSampleGradient::prepare(const torch::Tensor& x_raw) const {
  const ModelMeta& meta = model_.meta();
  torch::Tensor x = x_raw.to(model_.device(), torch::kFloat);
  if (meta.mean.empty()) return x;
  std::vector<int64_t> view(x.dim(), 1);
  if (meta.mean.size() > 1) view[1] = int64_t(meta.mean.size());
  return (x - torch::tensor(meta.mean, x.options()).view(view)) / torch::tensor(meta.std, x.options()).view(view);
}

PerSampleGradient::~PerSampleGradient() = default;

const std::vector<std::string>& PerSampleGradient::parameter_names() const { return graph_->names; }

std::vector<std::string> PerSampleGradient::layers() const {
  std::vector<std::string> out;
  for (const auto& l : graph_->layers) out.push_back(l.label);
  return out;
}

/// One forward and one backward: each probed layer's input activation and the
/// per-sample gradient of its output (undefined when it does not reach the loss).
struct PerSampleGradient::Pass {
  std::vector<torch::Tensor> activations, output_grads;
  torch::Tensor losses, logits;
};

PerSampleGradient::Pass PerSampleGradient::forward_backward(const torch::Tensor& x_raw, const torch::Tensor& y,
                                                            double label_smoothing) {
  const int64_t B = x_raw.size(0);
  torch::Tensor x = prepare(x_raw);
  auto& layers = graph_->layers;
  auto run = [&](const std::vector<torch::Tensor>& probes) {
    jit::Stack stack{model_.module()._ivalue(), x};
    for (const auto& p : probes) stack.emplace_back(p);
    jit::InterpreterState(*graph_->code).run(stack);
    return stack.back().toTupleRef().elements().vec();
  };
  if (!graph_->shapes_known) {  // one forward with scalar probes finds each layer's output shape
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> probes(layers.size(), torch::zeros({}, x.options()));
    auto res = run(probes);
    for (size_t i = 0; i < layers.size(); ++i) {
      auto s = res[1 + layers.size() + i].toTensor().sizes().vec();
      AEGIS_CHECK(!s.empty() && s[0] == B, Unsupported,
                  layers[i].label << ": per-sample gradients need the batch as the first dimension of its output");
      layers[i].out_shape.assign(s.begin() + 1, s.end());
    }
    graph_->shapes_known = true;
  }
  std::vector<torch::Tensor> probes;
  for (const auto& l : layers) {
    std::vector<int64_t> shape = {B};
    shape.insert(shape.end(), l.out_shape.begin(), l.out_shape.end());
    probes.push_back(torch::zeros(shape, x.options()).requires_grad_(true));
  }
  auto res = run(probes);
  Pass pass;
  torch::Tensor logits = res[0].toTensor();
  pass.losses = at::cross_entropy_loss(logits, y.to(logits.device()), {}, at::Reduction::None, -100, label_smoothing);
  if (!probes.empty())
    pass.output_grads = torch::autograd::grad({pass.losses.sum()}, probes, {}, /*retain_graph=*/false,
                                              /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t i = 0; i < layers.size(); ++i) {
    AEGIS_CHECK(res[1 + layers.size() + i].toTensor().sizes() == probes[i].sizes(), Internal,
                layers[i].label << ": output shape changed between batches");
    pass.activations.push_back(res[1 + i].toTensor().detach());
  }
  pass.logits = logits.detach();
  pass.losses = pass.losses.detach();
  return pass;
}

PerSampleGrads PerSampleGradient::compute(const torch::Tensor& x_raw, const torch::Tensor& y, double label_smoothing) {
  const ModelMeta& meta = model_.meta();
  AEGIS_CHECK(x_raw.size(0) == y.size(0), ShapeMismatch, "inputs and labels differ in batch size");
  const int64_t B = x_raw.size(0);
  PerSampleGrads out;
  if (B == 0) {
    for (const auto& p : graph_->params) out.grads.push_back(torch::zeros(batched_shape(0, p), p.options()));
    out.losses = torch::zeros({0});
    out.logits = torch::zeros({0, meta.num_classes});
    return out;
  }
  Pass pass = forward_backward(x_raw, y, label_smoothing);
  out.grads.resize(graph_->params.size());
  torch::NoGradGuard ng;
  for (size_t i = 0; i < graph_->layers.size(); ++i) {
    const auto& l = graph_->layers[i];
    if (!pass.output_grads[i].defined()) continue;  // the layer does not reach the loss
    auto [gw, gb] = layer_grads(l, pass.activations[i], pass.output_grads[i]);
    auto add = [&](int p, const torch::Tensor& t) {  // a parameter used by several layers sums their parts
      if (p < 0 || !t.defined()) return;
      torch::Tensor v = t.reshape(batched_shape(B, graph_->params[p]));
      out.grads[p] = out.grads[p].defined() ? out.grads[p] + v : v;
    };
    add(l.weight, gw);
    add(l.bias, gb);
  }
  for (size_t p = 0; p < out.grads.size(); ++p) {
    if (!out.grads[p].defined())
      out.grads[p] = torch::zeros(batched_shape(B, graph_->params[p]), graph_->params[p].options());
  }
  out.logits = pass.logits;
  out.losses = pass.losses;
  return out;
}

ClippedGradSum PerSampleGradient::clipped_sum(const torch::Tensor& x_raw, const torch::Tensor& y, double max_norm,
                                              const std::string& mode, double label_smoothing) {
  check_clipping(max_norm, mode);
  AEGIS_CHECK(x_raw.size(0) == y.size(0), ShapeMismatch, "inputs and labels differ in batch size");
  const int64_t B = x_raw.size(0);
  const size_t P = graph_->params.size();
  ClippedGradSum out;
  for (const auto& p : graph_->params) out.sum.push_back(torch::zeros_like(p));
  if (B == 0) {
    out.losses = torch::zeros({0});
    out.logits = torch::zeros({0, model_.meta().num_classes});
    out.norms = torch::zeros({0}, torch::kDouble);
    return out;
  }
  Pass pass = forward_backward(x_raw, y, label_smoothing);
  torch::NoGradGuard ng;
  const auto& layers = graph_->layers;
  // How many layers use each parameter: a ghost norm needs the parameter's only use.
  std::vector<int> uses(P, 0);
  for (const auto& l : layers) {
    if (l.weight >= 0) ++uses[size_t(l.weight)];
    if (l.bias >= 0) ++uses[size_t(l.bias)];
  }
  // Ghost layers: linear on [B, in] inputs whose parameters are used once.
  // Sample b's weight gradient is g_b a_b^T, whose norm is |g_b| |a_b|, and
  // the clipped sum is G^T diag(c) A: no [B, out, in] tensor is ever made.
  std::vector<torch::Tensor> per_sample(P), sq(P);
  struct Ghost {
    size_t layer;
    torch::Tensor a, g;
  };
  std::vector<Ghost> ghosts;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    const torch::Tensor& g = pass.output_grads[i];
    if (!g.defined()) continue;
    const torch::Tensor& a = pass.activations[i];
    const bool ghost = l.kind == c10::Symbol::fromQualString("aten::linear") && a.dim() == 2 && g.dim() == 2 &&
                       (l.weight < 0 || uses[size_t(l.weight)] == 1) && (l.bias < 0 || uses[size_t(l.bias)] == 1);
    if (ghost) {
      torch::Tensor gn = g.pow(2).sum(1);
      if (l.weight >= 0) sq[size_t(l.weight)] = a.pow(2).sum(1) * gn;
      if (l.bias >= 0) sq[size_t(l.bias)] = gn;
      ghosts.push_back({i, a, g});
      continue;
    }
    auto [gw, gb] = layer_grads(l, a, g);
    auto add = [&](int p, const torch::Tensor& t) {
      if (p < 0 || !t.defined()) return;
      torch::Tensor v = t.reshape(batched_shape(B, graph_->params[size_t(p)]));
      per_sample[size_t(p)] = per_sample[size_t(p)].defined() ? per_sample[size_t(p)] + v : v;
    };
    add(l.weight, gw);
    add(l.bias, gb);
  }
  for (size_t p = 0; p < P; ++p)
    if (per_sample[p].defined()) sq[p] = per_sample[p].reshape({B, -1}).pow(2).sum(1);
  // clipping.h's rule: flat, or per parameter at C / sqrt(P).
  torch::Tensor total = torch::zeros({B}, pass.logits.options());
  for (size_t p = 0; p < P; ++p)
    if (sq[p].defined()) total += sq[p];
  out.norms = total.to(torch::kDouble).sqrt();
  std::vector<torch::Tensor> f(P);
  const torch::Tensor flat = mode == "flat" ? clip_factors(total, max_norm) : torch::Tensor();
  for (size_t p = 0; p < P; ++p) {
    if (!sq[p].defined()) continue;
    f[p] = mode == "flat" ? flat : clip_factors(sq[p], max_norm / std::sqrt(double(P)));
  }
  for (size_t p = 0; p < P; ++p)
    if (per_sample[p].defined()) out.sum[p] = torch::tensordot(f[p], per_sample[p], {0}, {0});
  for (const auto& gh : ghosts) {
    const auto& l = layers[gh.layer];
    if (l.weight >= 0)
      out.sum[size_t(l.weight)] = torch::mm((gh.g * f[size_t(l.weight)].unsqueeze(1)).t(), gh.a)
                                      .reshape(graph_->params[size_t(l.weight)].sizes());
    if (l.bias >= 0) out.sum[size_t(l.bias)] = (gh.g * f[size_t(l.bias)].unsqueeze(1)).sum(0);
  }
  out.losses = pass.losses;
  out.logits = pass.logits;
  return out;
}

}  // namespace aegis
