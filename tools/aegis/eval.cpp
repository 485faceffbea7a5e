// aegis eval: clean accuracy, per-class accuracy and the confusion matrix.

#include <iostream>

#include <fmt/format.h>

#include "aegis/core/accuracy.h"
#include "aegis/core/sha256.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct EvalFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  int64_t batch_size = 512;
  std::string result_out;
};

void print_confusion(const AccuracyReport& r, const ModelMeta& meta) {
  const size_t k = r.confusion.size();
  std::cout << "\nconfusion matrix (rows: true class, columns: predicted)\n" << fmt::format("{:>14}", "");
  for (size_t p = 0; p < k; ++p) std::cout << fmt::format("{:>6}", p);
  std::cout << "\n";
  for (size_t t = 0; t < k; ++t) {
    std::string name = meta.class_name(int64_t(t));
    if (name.size() > 12) name = name.substr(0, 12);
    std::cout << fmt::format("{:>2} {:<11}", t, name);
    for (size_t p = 0; p < k; ++p) std::cout << fmt::format("{:>6}", r.confusion[t][p]);
    std::cout << "\n";
  }
}

void run(EvalFlags& f) {
  f.out.apply();
  Dataset data = load_dataset(f.data.spec("test"));
  auto model = f.model.load_classifier(&data);
  AccuracyReport r = measure_accuracy(*model, data, f.batch_size, !(f.out.json || f.out.quiet));
  nlohmann::json j = {{"model", f.model.describe()},
                      {"data", {{"source", data.source}, {"samples", data.size()}, {"fingerprint", data.fingerprint()}}},
                      {"metrics", r.to_json(&model->meta())}};
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  emit(f.out, j, [&] {
    const auto& meta = model->meta();
    std::cout << fmt::format("accuracy {:.4f} on {} samples of {} (mean loss {:.4f})\n", r.accuracy, r.samples,
                             data.source, r.loss);
    std::cout << "\nper-class accuracy\n";
    for (size_t c = 0; c < r.per_class_accuracy.size(); ++c)
      std::cout << fmt::format("{:>2} {:<14} {:.4f}  ({} samples)\n", c, meta.class_name(int64_t(c)),
                               r.per_class_accuracy[c], r.per_class_count[c]);
    print_confusion(r, meta);
    if (!f.result_out.empty()) std::cout << "\nresult saved to " << f.result_out << "\n";
  });
}

}  // namespace

void add_eval_command(CLI::App& app, Context&) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = app.add_subcommand("eval", "Clean accuracy, per-class accuracy and confusion matrix of a model");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--batch-size", f->batch_size, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--result", f->result_out, "Also write the result as JSON to this file");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
