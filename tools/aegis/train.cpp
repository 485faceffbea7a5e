// aegis train: train a built-in architecture (or continue training a given
// model) on a dataset and save it as a TorchScript archive with its metadata
// and training recipe inside. `--defense` picks what training minimises:
// standard cross-entropy, PGD adversarial training, TRADES, fast adversarial
// training, defensive distillation or DP-SGD (differentially private training,
// its own loop: Poisson batches, per-sample clipping, noise, an accountant).
// Hardening is a way of training, so it
// shares every data, architecture, regularisation and checkpoint flag here
// rather than duplicating them in a second subcommand.

#include <iostream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "aegis/core/accuracy.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/attacks/attack.h"
#include "aegis/defenses/training/distillation.h"
#include "aegis/defenses/training/fast_at.h"
#include "aegis/defenses/training/pgd_at.h"
#include "aegis/defenses/training/trades.h"
#include "aegis/defenses/training/trainer.h"
#include "aegis/privacy/dp_sgd.h"
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
  std::string init;  // continue from this model instead of a fresh architecture
  // robust training
  std::string defense = "none";
  double eps = 0.1;
  std::string norm = "linf";
  int64_t attack_steps = 7;
  double step_size = 0;
  double warmup_epochs = 0;
  int64_t fast_epochs = 0;
  double clean_weight = 0;
  double beta = 6.0;
  std::string teacher;
  double temperature = 20.0;
  double hard_weight = 0.0;
  // DP-SGD
  DpSgdOptions dp = DpSgdOptions(1.0);
  std::vector<CLI::Option*> dp_flags;  // refused unless --defense dp-sgd
};

std::unique_ptr<Objective> make_objective(const TrainFlags& f) {
  if (f.defense == "none" || f.defense == "dp-sgd") return nullptr;
  if (f.defense == "pgd-at")
    return std::make_unique<PGDATObjective>(PGDATOptions(f.eps)
                                                .norm(parse_norm(f.norm))
                                                .steps(f.attack_steps)
                                                .step_size(f.step_size)
                                                .warmup_epochs(f.warmup_epochs)
                                                .fast_epochs(f.fast_epochs)
                                                .clean_weight(f.clean_weight));
  if (f.defense == "trades")
    return std::make_unique<TRADESObjective>(TRADESOptions(f.eps)
                                                 .norm(parse_norm(f.norm))
                                                 .beta(f.beta)
                                                 .steps(f.attack_steps)
                                                 .step_size(f.step_size)
                                                 .warmup_epochs(f.warmup_epochs)
                                                 .seed(f.out.seed));
  if (f.defense == "fast-at") {
    AEGIS_CHECK(f.norm == "linf", InvalidArgument, "fast-at is Linf only");
    return std::make_unique<FastATObjective>(
        FastATOptions(f.eps).step_size(f.step_size).warmup_epochs(f.warmup_epochs).seed(f.out.seed));
  }
  if (f.defense == "distillation") {
    AEGIS_CHECK(!f.teacher.empty() || f.hard_weight == 1, InvalidArgument,
                "--defense distillation needs --teacher MODEL (or --hard-weight 1 to train a teacher at T)");
    return std::make_unique<DistillationObjective>(
        f.teacher.empty() ? nullptr : ScriptClassifier::load(f.teacher), DistillationOptions().temperature(f.temperature).hard_weight(f.hard_weight));
  }
  AEGIS_FAIL(InvalidArgument, "unknown defense '" << f.defense << "'");
}

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

/// " train acc X" on clean inputs, " adv train acc X" on an adversarial
/// objective's own batch, "" when the objective reported none.
std::string train_accuracy_text(const EpochStats& s) {
  if (s.train_accuracy_on == "none") return "";
  return fmt::format(" {}train acc {:.4f}", s.train_accuracy_on == "adversarial" ? "adv " : "", s.train_accuracy);
}

void run(TrainFlags& f) {
  f.out.apply();
  f.options.seed(f.out.seed);
  const bool dp = f.defense == "dp-sgd";
  for (const CLI::Option* o : f.dp_flags)
    AEGIS_CHECK(dp || o->count() == 0, InvalidArgument, o->get_name() << " applies to --defense dp-sgd only");
  if (dp) {
    AEGIS_CHECK(f.dp.target_epsilon_ > 0 || f.dp.noise_multiplier_ > 0, InvalidArgument,
                "--defense dp-sgd needs --epsilon E (the budget to spend) or --noise-multiplier SIGMA");
    AEGIS_CHECK(f.dp.target_epsilon_ == 0 || f.dp.noise_multiplier_ == 0, InvalidArgument,
                "give --epsilon or --noise-multiplier, not both");
    f.dp.validate();
    if (f.normalize == "auto") {
      log_info("DP-SGD: no data-derived normalisation (--normalize auto would compute the mean and std of the "
               "private data outside the accounted steps)");
      f.normalize = "none";
    }
  }
  Dataset all = load_dataset(f.data.spec("train"));
  AEGIS_CHECK(all.num_classes() >= 2, InvalidArgument, "training data has fewer than 2 classes");
  Dataset fit = all, val;
  bool have_val = f.val_fraction > 0;
  if (have_val) std::tie(fit, val) = all.split(f.val_fraction, f.out.seed);

  std::unique_ptr<Objective> objective = make_objective(f);
  std::shared_ptr<ScriptClassifier> model;
  std::string arch;
  if (!f.init.empty()) {
    model = ScriptClassifier::load(f.init, ModelOverrides().fallback_input_shape(all.sample_shape()));
    check_compatible(model->meta(), fit);
    arch = model->meta().architecture;
  } else {
    arch = pick_arch(f.arch, fit);
    ArchitectureOptions ao(arch, fit.sample_shape(), all.num_classes());
    ao.dropout(f.dropout).class_names(all.class_names);
    if (f.normalize == "auto") {
      auto [m, s] = data_statistics(fit);
      ao.normalization(m, s);
    }
    model = build_architecture(ao);
  }
  log_info(fmt::format("training {} ({} parameters) on {} samples, validating on {}", arch,
                       model->parameter_count(), fit.size(), val.size()));
  auto on_epoch = [&](const EpochStats& s) {
    if (!f.out.json && f.out.quiet) return;
    if (!f.out.json)
      log_info(fmt::format("epoch {}: loss {:.4f}{} val acc {:.4f} ({:.1f}s)", s.epoch, s.train_loss,
                           train_accuracy_text(s), s.val_accuracy, s.seconds));
  };
  TrainResult r;
  nlohmann::json privacy;
  if (dp) {
    DpSgdResult d = train_dp_sgd(*model, fit, have_val ? &val : nullptr, f.options, f.dp, on_epoch);
    r = d.training;
    privacy = d.privacy;
  } else {
    r = train(*model, fit, have_val ? &val : nullptr, f.options, objective.get(), on_epoch);
  }
  model->save(f.model_out);

  nlohmann::json j = {{"model", f.model_out},
                      {"architecture", arch},
                      {"parameters", model->parameter_count()},
                      {"defense", f.defense},
                      {"training", model->meta().provenance.value("training", nlohmann::json())},
                      {"data", {{"source", all.source}, {"train_samples", fit.size()}, {"val_samples", val.size()}}},
                      {"options", f.options.to_json()},
                      {"result", r.to_json()}};
  if (dp) j["privacy"] = privacy;
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  emit(f.out, j, [&] {
    const auto& last = r.history.back();
    std::cout << fmt::format("trained {} ({}) in {:.1f}s", arch, f.defense == "none" ? "standard" : f.defense, r.seconds);
    const std::string acc = train_accuracy_text(last);
    if (!acc.empty()) std::cout << ":" << acc;
    if (have_val) std::cout << fmt::format(", val acc {:.4f}", last.val_accuracy);
    if (dp)
      std::cout << fmt::format("\nprivacy: epsilon {:.4g} at delta {:g} ({}; sigma {:.4g}, C {:g}, q {:.4g}, {} steps{})",
                               privacy["epsilon"].get<double>(), privacy["delta"].get<double>(),
                               privacy["accountant"].get<std::string>(), privacy["noise_multiplier"].get<double>(),
                               privacy["max_grad_norm"].get<double>(), privacy["sample_rate"].get<double>(),
                               privacy["steps"].get<int64_t>(), privacy["seeded"].get<bool>() ? "; SEEDED noise" : "");
    std::cout << "\nmodel saved to " << f.model_out << "\n";
    if (!f.result_out.empty()) std::cout << "result saved to " << f.result_out << "\n";
  });
}

}  // namespace

void add_train_command(CLI::App& app, Context&) {
  auto f = std::make_shared<TrainFlags>();
  auto* sub = app.add_subcommand("train", "Train or harden a model (--defense pgd-at, trades, fast-at, distillation) and save it as TorchScript");
  add_output_flags(sub, f->out);
  add_data_flags(sub, f->data, "train");
  sub->add_option("--arch", f->arch, "Architecture: auto, mlp, cnn, cnn-dp (small tanh CNN for DP-SGD), resnet, resnet-gn (group norm: DP-SGD can train it)")
      ->check(CLI::IsMember({"auto", "mlp", "cnn", "cnn-dp", "resnet", "resnet-gn"}))->capture_default_str();
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
  sub->add_option("--init", f->init, "Start from this model (fine-tune / harden an existing model) instead of a fresh one");
  auto* d = "Robust training";
  sub->add_option("--defense", f->defense,
                  "What training minimises: none (cross-entropy), pgd-at (Madry), trades, fast-at (FGSM with random "
                  "start), distillation (needs --teacher), dp-sgd (differential privacy: --epsilon or --noise-multiplier)")
      ->check(CLI::IsMember({"none", "pgd-at", "trades", "fast-at", "distillation", "dp-sgd"}))->capture_default_str()->group(d);
  sub->add_option("--eps", f->eps, "Perturbation budget trained against (raw input units)")->capture_default_str()->group(d);
  sub->add_option("--norm", f->norm, "Threat model of pgd-at/trades: linf or l2")
      ->check(CLI::IsMember({"linf", "l2"}))->capture_default_str()->group(d);
  sub->add_option("--attack-steps", f->attack_steps, "Inner attack steps (pgd-at, trades)")->capture_default_str()->check(CLI::PositiveNumber)->group(d);
  sub->add_option("--step-size", f->step_size, "Inner step size (0 = 2.5 eps/steps; fast-at: 1.25 eps)")->capture_default_str()->group(d);
  sub->add_option("--warmup-epochs", f->warmup_epochs, "Grow eps linearly from 0 over the first N epochs")->capture_default_str()->group(d);
  sub->add_option("--fast-epochs", f->fast_epochs, "pgd-at: the first N epochs use random-start FGSM (cheap) instead of PGD")->capture_default_str()->group(d);
  sub->add_option("--clean-weight", f->clean_weight, "pgd-at: weight of the clean loss beside the adversarial one")->capture_default_str()->check(CLI::Range(0.0, 1.0))->group(d);
  sub->add_option("--beta", f->beta, "trades: weight of the robustness (KL) term")->capture_default_str()->group(d);
  sub->add_option("--teacher", f->teacher, "distillation: the teacher model")->group(d);
  sub->add_option("--temperature", f->temperature, "distillation: temperature T")->capture_default_str()->group(d);
  sub->add_option("--hard-weight", f->hard_weight, "distillation: weight of the true-label loss")->capture_default_str()->check(CLI::Range(0.0, 1.0))->group(d);
  auto* p = "Differential privacy (--defense dp-sgd; --batch-size is the expected Poisson batch)";
  f->dp_flags = {
      sub->add_option("--epsilon", f->dp.target_epsilon_, "Privacy budget to spend over the run (finds the noise multiplier)")->check(CLI::PositiveNumber)->group(p),
      sub->add_option("--delta", f->dp.delta_, "delta of the guarantee (well below 1/N)")->capture_default_str()->group(p),
      sub->add_option("--noise-multiplier", f->dp.noise_multiplier_, "sigma, instead of --epsilon")->check(CLI::PositiveNumber)->group(p),
      sub->add_option("--max-grad-norm", f->dp.max_grad_norm_, "Per-sample clipping norm C")->capture_default_str()->check(CLI::PositiveNumber)->group(p),
      sub->add_option("--clipping", f->dp.clipping_, "flat (whole gradient to C) or per-layer (each tensor to C/sqrt(K))")
          ->check(CLI::IsMember({"flat", "per-layer"}))->capture_default_str()->group(p),
      sub->add_option("--physical-batch-size", f->dp.physical_batch_size_, "Examples whose per-sample gradients are held at once (memory)")
          ->capture_default_str()->check(CLI::PositiveNumber)->group(p),
      sub->add_option("--accountant", f->dp.accountant_, "prv (tighter) or rdp")->check(CLI::IsMember({"prv", "rdp"}))->capture_default_str()->group(p),
      sub->add_option("--ema", f->dp.ema_decay_, "Keep the exponential moving average of the weights with this decay per step (e.g. 0.999; 0 = off): free post-processing that smooths the noise")->group(p)->check(CLI::Range(0.0, 0.9999999)),
      sub->add_flag("--seeded-noise", f->dp.seeded_, "Reproducible sampling and noise from --seed (labelled in the model; not private against whoever knows the seed)")->group(p)};
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
