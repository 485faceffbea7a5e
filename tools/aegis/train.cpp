// aegis train: train a built-in architecture on a dataset and save it as a
// TorchScript archive with its metadata and training recipe inside.

#include <iostream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "aegis/core/accuracy.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/defenses/training/trainer.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct TrainFlags {
  OutputFlags out;
  DataFlags data;
  std::string arch = "auto";
  std::string model_out = "model.pt";
  std::string result_out;
  double dropout = 0.25;
  double val_fraction = 0.1;
  std::string normalize = "auto";
  TrainOptions options = TrainOptions().epochs(3).lr(2e-3).weight_decay(5e-4);
};

/// Per-channel (images) or per-feature mean and std of the training data.
std::pair<std::vector<double>, std::vector<double>> data_statistics(const Dataset& d) {
  torch::Tensor x = d.x;
  std::vector<int64_t> dims = {0};
  for (int64_t i = 2; i < x.dim(); ++i) dims.push_back(i);
  torch::Tensor m = x.mean(dims), s = x.std(dims).clamp_min(1e-6);
  if (x.dim() == 2) {  // tabular: one scalar keeps the built-in model simple
    m = x.mean().unsqueeze(0);
    s = x.std().clamp_min(1e-6).unsqueeze(0);
  }
  std::vector<double> mv(m.numel()), sv(s.numel());
  for (int64_t i = 0; i < m.numel(); ++i) {
    mv[i] = m[i].item<double>();
    sv[i] = s[i].item<double>();
  }
  return {mv, sv};
}

std::string pick_arch(const std::string& arch, const Dataset& d) {
  if (arch != "auto") return arch;
  auto s = d.sample_shape();
  if (s.size() == 1) return "mlp";
  if (s.size() == 3 && s[1] == 28 && s[2] == 28) return "cnn";
  if (s.size() == 3) return "resnet";
  AEGIS_FAIL(InvalidArgument, "no built-in architecture fits samples of " << s.size() << " dimensions; pick --arch");
}

void run(TrainFlags& f) {
  f.out.apply();
  f.options.seed(f.out.seed);
  Dataset all = load_dataset(f.data.spec("train"));
  AEGIS_CHECK(all.num_classes() >= 2, InvalidArgument, "training data has fewer than 2 classes");
  Dataset fit = all, val;
  bool have_val = f.val_fraction > 0;
  if (have_val) std::tie(fit, val) = all.split(f.val_fraction, f.out.seed);

  std::string arch = pick_arch(f.arch, fit);
  ArchitectureOptions ao(arch, fit.sample_shape(), all.num_classes());
  ao.dropout(f.dropout).class_names(all.class_names);
  if (f.normalize == "auto") {
    auto [m, s] = data_statistics(fit);
    ao.normalization(m, s);
  }
  auto model = build_architecture(ao);
  log_info(fmt::format("training {} ({} parameters) on {} samples, validating on {}", arch,
                       model->parameter_count(), fit.size(), val.size()));
  TrainResult r = train(*model, fit, have_val ? &val : nullptr, f.options, nullptr, [&](const EpochStats& s) {
    if (!f.out.json && f.out.quiet) return;
    if (!f.out.json)
      log_info(fmt::format("epoch {}: loss {:.4f} train acc {:.4f} val acc {:.4f} ({:.1f}s)", s.epoch, s.train_loss,
                           s.train_accuracy, s.val_accuracy, s.seconds));
  });
  model->save(f.model_out);

  nlohmann::json j = {{"model", f.model_out},
                      {"architecture", arch},
                      {"parameters", model->parameter_count()},
                      {"data", {{"source", all.source}, {"train_samples", fit.size()}, {"val_samples", val.size()}}},
                      {"options", f.options.to_json()},
                      {"result", r.to_json()}};
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  emit(f.out, j, [&] {
    const auto& last = r.history.back();
    std::cout << fmt::format("trained {} in {:.1f}s: train acc {:.4f}", arch, r.seconds, last.train_accuracy);
    if (have_val) std::cout << fmt::format(", val acc {:.4f}", last.val_accuracy);
    std::cout << "\nmodel saved to " << f.model_out << "\n";
    if (!f.result_out.empty()) std::cout << "result saved to " << f.result_out << "\n";
  });
}

}  // namespace

void add_train_command(CLI::App& app, Context&) {
  auto f = std::make_shared<TrainFlags>();
  auto* sub = app.add_subcommand("train", "Train a built-in model and save it as TorchScript");
  add_output_flags(sub, f->out);
  add_data_flags(sub, f->data, "train");
  sub->add_option("--arch", f->arch, "Architecture: auto, mlp, cnn, resnet")
      ->check(CLI::IsMember({"auto", "mlp", "cnn", "resnet"}))->capture_default_str();
  sub->add_option("-o,--out", f->model_out, "Where to save the model")->capture_default_str();
  sub->add_option("--result", f->result_out, "Also write the training result as JSON to this file");
  sub->add_option("--epochs", f->options.epochs_, "Epochs")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--batch-size", f->options.batch_size_, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--lr", f->options.lr_, "Peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--weight-decay", f->options.weight_decay_, "Weight decay")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--dropout", f->dropout, "Dropout before the classifier head")->capture_default_str()->check(CLI::Range(0.0, 0.95));
  sub->add_option("--label-smoothing", f->options.label_smoothing_, "Label smoothing")->capture_default_str()->check(CLI::Range(0.0, 0.99));
  sub->add_option("--optimizer", f->options.optimizer_, "adam (AdamW) or sgd")->check(CLI::IsMember({"adam", "sgd"}))->capture_default_str();
  sub->add_option("--schedule", f->options.schedule_, "Learning-rate schedule: constant, cosine, onecycle")
      ->check(CLI::IsMember({"constant", "cosine", "onecycle"}))->capture_default_str();
  sub->add_option("--val-fraction", f->val_fraction, "Fraction held out for validation (0 = none)")->capture_default_str()->check(CLI::Range(0.0, 0.9));
  sub->add_option("--patience", f->options.patience_, "Early stopping after N epochs without validation gain (0 = off)")->capture_default_str();
  sub->add_option("--normalize", f->normalize, "auto: bake the training data's mean/std into the model; none")
      ->check(CLI::IsMember({"auto", "none"}))->capture_default_str();
  sub->add_option("--checkpoint-dir", f->options.checkpoint_dir_, "Save a checkpoint after each epoch here");
  sub->add_flag("--resume", f->options.resume_, "Continue from the checkpoint in --checkpoint-dir");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
