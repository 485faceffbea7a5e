// aegis scan-backdoor: Neural Cleanse trigger reverse-engineering on a
// finished model, with the MAD anomaly index per class.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/defenses/backdoor/neural_cleanse.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct BackdoorFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  NeuralCleanseOptions options;
  std::string report_out, triggers_dir;
};

void run(BackdoorFlags& f) {
  f.out.apply();
  f.options.seed(f.out.seed);
  Dataset clean = load_dataset(f.data.spec("test"));
  auto model = f.model.load(&clean);
  NeuralCleanseResult r = neural_cleanse(*model, clean, f.options);
  nlohmann::json j = r.to_json();
  j["model"] = f.model.path;
  j["data"] = clean.source;
  j["clean_samples"] = clean.size();
  if (!f.triggers_dir.empty()) {
    std::filesystem::create_directories(f.triggers_dir);
    for (const auto& c : r.classes) {
      save_npy(c.mask.contiguous(), fmt::format("{}/mask_{}.npy", f.triggers_dir, c.target));
      save_npy(c.pattern.contiguous(), fmt::format("{}/pattern_{}.npy", f.triggers_dir, c.target));
    }
  }
  if (!f.report_out.empty()) write_json_file(f.report_out, j);
  emit(f.out, j, [&] {
    std::cout << fmt::format("{:>6} {:>10} {:>8} {:>8}\n", "class", "mask L1", "success", "anomaly");
    for (const auto& c : r.classes)
      std::cout << fmt::format("{:>6} {:>10.2f} {:>8.3f} {:>8.2f}{}\n", model->meta().class_name(c.target), c.mask_l1,
                               c.attack_success_rate, c.anomaly_index,
                               c.anomaly_index > f.options.anomaly_threshold_ ? "  <- flagged" : "");
    if (r.backdoor_suspected())
      std::cout << fmt::format("backdoor suspected: class(es) {} need an unusually small trigger\n",
                               fmt::join(r.flagged_classes, ", "));
    else
      std::cout << "no class stands out (no small patch-like trigger found; "
                   "other backdoor kinds are not ruled out)\n";
  });
}

}  // namespace

void add_scan_backdoor_command(CLI::App& app, Context&) {
  auto f = std::make_shared<BackdoorFlags>();
  auto* sub =
      app.add_subcommand("scan-backdoor", "Neural Cleanse: reverse-engineer a trigger per class, flag outliers");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model, true);
  f->data.limit = 1000;
  add_data_flags(sub, f->data, "test");
  sub->add_option("--steps", f->options.steps_, "Optimisation steps per class")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch-size", f->options.batch_size_, "Batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--lr", f->options.lr_, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--init-cost", f->options.init_cost_, "Initial weight of the mask size")->capture_default_str();
  sub->add_option("--threshold", f->options.anomaly_threshold_, "Anomaly index above which a class is flagged")
      ->capture_default_str();
  sub->add_option("--early-stop", f->options.early_stop_windows_,
                  "Stop a class when its smallest mask has not shrunk 1% for this many windows of 10 steps (0 = "
                  "never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--smoothness", f->options.smoothness_,
                  "Weight of the mask's total variation beside its L1 norm (0 = the paper's Neural Cleanse); "
                  "makes scattered natural triggers cost more than a compact planted patch")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--out", f->report_out, "Also write the result (JSON) here");
  sub->add_option("--save-triggers", f->triggers_dir, "Write each class's reversed mask and pattern (.npy) here");
  sub->description(sub->get_description() + ". " + 
      "--data gives clean inputs (default: the first 1000 "
      "Fashion-MNIST test images).");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
