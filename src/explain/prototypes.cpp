#include "aegis/explain/prototypes.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

std::string prototype_kind_name(PrototypeKind kind) { return kind == PrototypeKind::Mean ? "mean" : "maximise"; }

PrototypeKind parse_prototype_kind(const std::string& name) {
  if (name == "mean") return PrototypeKind::Mean;
  if (name == "maximise" || name == "maximize") return PrototypeKind::Maximise;
  AEGIS_FAIL(InvalidArgument, "unknown prototype kind '" << name << "' (mean or maximise)");
}

void PrototypeOptions::validate() const {
  AEGIS_CHECK(top_k_ >= 1, InvalidArgument, "prototypes: top k must be >= 1, got " << top_k_);
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "prototypes: batch size must be >= 1, got " << batch_size_);
  if (kind_ == PrototypeKind::Maximise) inversion_.validate();
}

nlohmann::json PrototypeOptions::to_json() const {
  nlohmann::json j = {{"kind", prototype_kind_name(kind_)}, {"classes", classes_}};
  if (kind_ == PrototypeKind::Mean) {
    j["top_k"] = top_k_;
  } else {
    j["inversion"] = inversion_.to_json();
    j["inversion"].erase("classes");
  }
  return j;
}

nlohmann::json ClassPrototypes::to_json() const {
  nlohmann::json per_class = nlohmann::json::array();
  for (int64_t i = 0; i < classes.size(0); ++i) {
    nlohmann::json c = {{"class", classes[i].item<int64_t>()},
                        {"score", score[i].item<double>()},
                        {"probability", probability[i].item<double>()}};
    if (counts.defined()) c["samples_averaged"] = counts[i].item<int64_t>();
    if (mean_confidence.defined()) c["mean_confidence"] = mean_confidence[i].item<double>();
    if (start_score.defined()) c["start_score"] = start_score[i].item<double>();
    per_class.push_back(std::move(c));
  }
  return {{"kind", prototype_kind_name(kind)}, {"queries", queries}, {"seconds", seconds}, {"classes", per_class}};
}

namespace {

std::vector<int64_t> chosen_classes(const ModelMeta& meta, const std::vector<int64_t>& given) {
  std::vector<int64_t> classes = given;
  if (classes.empty())
    for (int64_t c = 0; c < meta.num_classes; ++c) classes.push_back(c);
  for (int64_t c : classes)
    AEGIS_CHECK(c >= 0 && c < meta.num_classes, InvalidArgument,
                "prototypes: class " << c << " outside the model's " << meta.num_classes << " classes");
  return classes;
}

/// Probabilities [N, classes] of the whole dataset, batch by batch.
torch::Tensor all_probabilities(Classifier& model, const torch::Tensor& x, int64_t batch_size) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size)
    parts.push_back(model.probabilities(x.narrow(0, i, std::min(batch_size, x.size(0) - i))));
  return torch::cat(parts);
}

void mean_prototypes(Classifier& model, const Dataset& data, const PrototypeOptions& o, ClassPrototypes& r) {
  torch::Tensor probs = all_probabilities(model, data.x.to(torch::kFloat), o.batch_size_);
  std::vector<torch::Tensor> images, counts, confidence;
  for (int64_t i = 0; i < r.classes.size(0); ++i) {
    const int64_t c = r.classes[i].item<int64_t>();
    torch::Tensor members = (data.y == c).nonzero().flatten();
    AEGIS_CHECK(members.size(0) > 0, InvalidArgument,
                "prototypes: class " << c << " has no samples in " << (data.source.empty() ? "the data" : data.source)
                                     << " (give more samples, or name the classes)");
    torch::Tensor p = probs.index_select(0, members).select(1, c);
    // Most confident first; a stable sort keeps equally confident samples in data order.
    torch::Tensor order = std::get<1>(p.sort(true, 0, true));
    torch::Tensor top = order.narrow(0, 0, std::min<int64_t>(o.top_k_, order.size(0)));
    images.push_back(data.x.index_select(0, members.index_select(0, top)).to(torch::kFloat).mean(0));
    counts.push_back(torch::tensor(top.size(0), torch::kLong));
    confidence.push_back(p.index_select(0, top).mean());
  }
  r.images = torch::stack(images);
  r.counts = torch::stack(counts);
  r.mean_confidence = torch::stack(confidence);
}

void maximised_prototypes(Classifier& model, const PrototypeOptions& o, const std::vector<int64_t>& classes,
                          ClassPrototypes& r) {
  InversionOptions inv = o.inversion_;
  inv.classes(classes);
  const ModelMeta& m = model.meta();
  std::vector<int64_t> shape = {int64_t(classes.size())};
  shape.insert(shape.end(), m.input_shape.begin(), m.input_shape.end());
  // The start MI-Face takes (the same draw for "random": its generator's first).
  torch::Tensor start;
  if (inv.init_ == "min") {
    start = torch::full(shape, m.clip_min);
  } else if (inv.init_ == "mid") {
    start = torch::full(shape, (m.clip_min + m.clip_max) / 2);
  } else {
    auto gen = make_generator(inv.seed_, "inversion");
    start = torch::rand(shape, gen) * (m.clip_max - m.clip_min) + m.clip_min;
  }
  r.start_score = model.logits(start).gather(1, r.classes.view({-1, 1})).squeeze(1);
  r.images = mi_face(model, inv, nullptr).reconstructions;
}

}  // namespace

ClassPrototypes class_prototypes(Classifier& model, const Dataset* data, const PrototypeOptions& o) {
  o.validate();
  const auto start = std::chrono::steady_clock::now();
  const int64_t q0 = model.queries();
  const ModelMeta& meta = model.meta();
  const std::vector<int64_t> classes = chosen_classes(meta, o.classes_);
  ClassPrototypes r;
  r.kind = o.kind_;
  r.classes = torch::tensor(classes, torch::kLong);
  if (o.kind_ == PrototypeKind::Mean) {
    AEGIS_CHECK(data != nullptr, InvalidArgument, "prototypes: the mean of confident samples needs a dataset");
    data->validate();
    check_compatible(meta, *data);
    AEGIS_CHECK(data->size() > 0, InvalidArgument, "prototypes: the data is empty");
    mean_prototypes(model, *data, o, r);
  } else {
    maximised_prototypes(model, o, classes, r);
  }
  torch::Tensor logits = model.logits(r.images);
  r.score = logits.gather(1, r.classes.view({-1, 1})).squeeze(1);
  r.probability = torch::softmax(logits, 1).gather(1, r.classes.view({-1, 1})).squeeze(1);
  r.queries = model.queries() - q0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
