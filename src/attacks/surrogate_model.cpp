#include "aegis/attacks/surrogate_model.h"

#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

void SurrogateModelOptions::validate() const {
  AEGIS_CHECK(arch_ == "auto" || arch_ == "mlp" || arch_ == "cnn" || arch_ == "resnet", InvalidArgument,
              "surrogate architecture must be auto, mlp, cnn or resnet, got '" << arch_ << "'");
  AEGIS_CHECK(dropout_ >= 0 && dropout_ < 1, InvalidArgument, "dropout must be in [0, 1), got " << dropout_);
  for (int64_t h : hidden_) AEGIS_CHECK(h >= 1, InvalidArgument, "hidden widths must be >= 1, got " << h);
  train_.validate();
}

nlohmann::json SurrogateModelOptions::to_json() const {
  return {{"arch", arch_}, {"hidden", hidden_}, {"dropout", dropout_}, {"normalize", normalize_},
          {"train", train_.to_json()}};
}

std::string surrogate_architecture(const ModelMeta& meta, const SurrogateModelOptions& o) {
  if (o.arch_ != "auto") return o.arch_;
  if (meta.architecture == "mlp" || meta.architecture == "cnn" || meta.architecture == "resnet")
    return meta.architecture;
  const auto& s = meta.input_shape;
  if (s.size() == 1) return "mlp";
  if (s.size() == 3 && s[1] == 28 && s[2] == 28) return "cnn";
  if (s.size() == 3 && s[1] == 32 && s[2] == 32) return "resnet";
  AEGIS_FAIL(InvalidArgument, "no built-in architecture fits the victim's input shape; pick a surrogate arch");
}

torch::Tensor SoftTargetObjective::loss(ScriptClassifier& model, const Batch& batch, const StepContext&,
                                        torch::Tensor& clean_logits) {
  clean_logits = model.forward(batch.x);
  torch::Tensor t = targets_.index_select(0, batch.indices).to(clean_logits.device());
  return -(t * torch::log_softmax(clean_logits, 1)).sum(1).mean();
}

std::shared_ptr<ScriptClassifier> train_surrogate(const ModelMeta& meta, const Dataset& data,
                                                  const SurrogateModelOptions& o, const torch::Tensor* soft) {
  o.validate();
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "no data to train a surrogate on");
  if (soft) {
    AEGIS_CHECK(soft->dim() == 2 && soft->size(0) == data.size() && soft->size(1) == meta.num_classes,
                ShapeMismatch, "soft targets must be [" << data.size() << ", " << meta.num_classes << "]");
  }
  ArchitectureOptions ao(surrogate_architecture(meta, o), meta.input_shape, meta.num_classes);
  ao.hidden(o.hidden_).dropout(o.dropout_).clip(meta.clip_min, meta.clip_max).class_names(meta.class_names);
  if (o.normalize_) {
    torch::Tensor x = data.x;
    std::vector<double> m, s;
    if (x.dim() == 2) {
      m = {x.mean().item<double>()};
      s = {std::max(x.std().item<double>(), 1e-6)};
    } else {
      std::vector<int64_t> dims = {0};
      for (int64_t i = 2; i < x.dim(); ++i) dims.push_back(i);
      torch::Tensor mt = x.mean(dims), st = x.std(dims).clamp_min(1e-6);
      for (int64_t i = 0; i < mt.numel(); ++i) {
        m.push_back(mt[i].item<double>());
        s.push_back(st[i].item<double>());
      }
    }
    ao.normalization(m, s);
  }
  seed_everything(o.train_.seed_);
  auto model = build_architecture(ao);
  Dataset d = data;
  if (soft) {
    // The trainer's accuracy bookkeeping needs hard labels: the targets' argmax.
    d.y = soft->argmax(1);
    SoftTargetObjective objective(soft->to(torch::kFloat));
    train(*model, d, nullptr, o.train_, &objective);
  } else {
    train(*model, d, nullptr, o.train_);
  }
  return model;
}

}  // namespace aegis
