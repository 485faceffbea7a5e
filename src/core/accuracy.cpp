#include "aegis/core/accuracy.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"

namespace aegis {

void check_compatible(const ModelMeta& meta, const Dataset& data) {
  auto shape = data.sample_shape();
  auto fmt_shape = [](const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  };
  AEGIS_CHECK(shape == meta.input_shape, ShapeMismatch,
              "data samples are " << fmt_shape(shape) << " but the model takes " << fmt_shape(meta.input_shape));
  if (data.size() > 0) {
    int64_t max_label = data.y.max().item<int64_t>();
    AEGIS_CHECK(max_label < meta.num_classes, ShapeMismatch,
                "data has label " << max_label << " but the model has only " << meta.num_classes << " classes");
  }
}

AccuracyReport measure_accuracy(Classifier& model, const Dataset& data, int64_t batch_size, bool show_progress) {
  check_compatible(model.meta(), data);
  const int64_t k = model.meta().num_classes;
  AccuracyReport r;
  r.samples = data.size();
  torch::Tensor confusion = torch::zeros({k, k}, torch::kLong);
  double loss_sum = 0;
  auto batches = data.batches(batch_size);
  Progress bar("evaluate", int64_t(batches.size()), show_progress ? ProgressMode::Auto : ProgressMode::Quiet);
  for (const auto& b : batches) {
    torch::Tensor logits = model.logits(b.x).to(torch::kCPU);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, b.y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    torch::Tensor pred = logits.argmax(1);
    confusion.view(-1).index_add_(0, b.y * k + pred, torch::ones_like(pred));
    bar.advance(1);
  }
  bar.finish();
  auto acc = confusion.accessor<int64_t, 2>();
  int64_t correct = 0;
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  for (int64_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < k; ++p) {
      r.confusion[t][p] = acc[t][p];
      row += acc[t][p];
    }
    correct += acc[t][t];
    r.per_class_count.push_back(row);
    r.per_class_accuracy.push_back(row ? double(acc[t][t]) / double(row) : 0.0);
  }
  r.accuracy = r.samples ? double(correct) / double(r.samples) : 0.0;
  r.loss = r.samples ? loss_sum / double(r.samples) : 0.0;
  return r;
}

nlohmann::json AccuracyReport::to_json(const ModelMeta* meta) const {
  nlohmann::json per_class = nlohmann::json::array();
  for (size_t c = 0; c < per_class_accuracy.size(); ++c) {
    per_class.push_back({{"class", int64_t(c)},
                         {"name", meta ? meta->class_name(int64_t(c)) : std::to_string(c)},
                         {"samples", per_class_count[c]},
                         {"accuracy", per_class_accuracy[c]}});
  }
  return {{"samples", samples}, {"accuracy", accuracy}, {"loss", loss}, {"per_class", per_class},
          {"confusion", confusion}};
}

}  // namespace aegis
