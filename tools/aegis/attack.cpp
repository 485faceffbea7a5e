// aegis attack: run one attack by name on a model and data and write its
// result (JSON) and artefacts into the output directory. Dispatch by family:
// evasion attacks come from the attack registry (adversarial examples as NPY,
// a PNG grid for images); membership, inversion and extraction are the
// privacy attacks of privacy_attack.cpp (ROC curve, reconstructions, the
// stolen substitute), whose options this subcommand also carries.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "aegis/attacks/registry.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/core/sha256.h"
#include "commands.h"
#include "aegis/attacks/evasion/preflight.h"
#include "privacy_attack.h"

namespace aegis::cli {

namespace {

struct AttackFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string attack;
  CLI::Option* eps_opt = nullptr;
  CLI::Option* steps_opt = nullptr;
  CLI::Option* norm_opt = nullptr;
  CLI::Option* targeted_opt = nullptr;
  double eps = 0;
  int64_t steps = 0;
  std::string norm;
  std::string targeted;
  std::string params_json;
  std::vector<std::string> params_kv;
  std::string out_dir = "attack-out";
  int64_t n = 0;
  int64_t batch_size = 256;
  int64_t grid = 16;
  bool force = false;
  CLI::Option* n_opt = nullptr;
  PrivacyFlags privacy;  ///< the privacy attacks' own options
};

/// Parameters: --params JSON, then each --param key=value (value as JSON when
/// it parses, else as a string), then --eps/--steps/--norm/--targeted when given.
nlohmann::json collect_params(const AttackFlags& f) {
  nlohmann::json p = nlohmann::json::object();
  if (!f.params_json.empty()) {
    try {
      p = nlohmann::json::parse(f.params_json);
    } catch (const nlohmann::json::exception& e) {
      AEGIS_FAIL(InvalidArgument, "--params is not valid JSON: " << e.what());
    }
    AEGIS_CHECK(p.is_object(), InvalidArgument, "--params must be a JSON object");
  }
  for (const auto& kv : f.params_kv) {
    auto eq = kv.find('=');
    AEGIS_CHECK(eq != std::string::npos && eq > 0, InvalidArgument, "--param takes key=value, got '" << kv << "'");
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    try {
      p[key] = nlohmann::json::parse(value);
    } catch (const nlohmann::json::exception&) {
      p[key] = value;
    }
  }
  if (f.eps_opt->count()) p["eps"] = f.eps;
  if (f.steps_opt->count()) p["steps"] = f.steps;
  if (f.norm_opt->count()) p["norm"] = f.norm;
  if (f.targeted_opt->count()) p["targeted"] = f.targeted;
  if (!p.contains("seed")) p["seed"] = f.out.seed;
  return p;
}

bool is_evasion_attack(const std::string& name) {
  for (const auto& a : attack_catalog())
    if (a.name == name) return true;
  return false;
}

void run_evasion(AttackFlags& f) {
  auto attack = make_attack(f.attack, collect_params(f));
  if (f.n > 0) f.data.limit = f.n;
  Dataset data = load_dataset(f.data.spec("test"));
  auto model = f.model.load_classifier(&data);
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "no samples to attack");
  // Preflight: the attack's own eps and norm where it has them (minimum-norm
  // attacks have none); refusals stop the run unless --force.
  const nlohmann::json opts = attack->options_json();
  const double eps = opts.contains("eps") && opts["eps"].is_number() ? opts["eps"].get<double>() : 0.0;
  const Norm norm = opts.contains("norm") && opts["norm"].is_string() ? parse_norm(opts["norm"]) : Norm::Linf;
  Preflight pre = run_preflight(*model, data.x, data.y,
                                PreflightOptions(norm, eps)
                                    .gradient_only(attack->needs_gradients())
                                    .eot_samples(opts.value("eot_samples", int64_t{1})));
  if (!f.force) pre.enforce();

  AttackResult r = attack->run_batched(*model, data.x, data.y, f.batch_size);
  torch::Tensor clean_pred = model->predict(data.x);
  const double clean_acc = (clean_pred == data.y).to(torch::kDouble).mean().item<double>();
  const double adv_acc = (r.adv_pred == data.y).to(torch::kDouble).mean().item<double>();

  namespace fs = std::filesystem;
  fs::create_directories(f.out_dir);
  const std::string dir = fs::path(f.out_dir).string();
  save_npy(r.x_adv, dir + "/x_adv.npy");
  save_npy(data.y, dir + "/y.npy");
  save_npy(r.adv_pred, dir + "/adv_pred.npy");
  save_npy(r.success.to(torch::kUInt8), dir + "/success.npy");
  std::vector<std::string> files = {"x_adv.npy", "y.npy", "adv_pred.npy", "success.npy"};
  const auto& shape = model->meta().input_shape;
  if (shape.size() == 3 && (shape[0] == 1 || shape[0] == 3) && f.grid > 0) {
    const int64_t k = std::min<int64_t>(f.grid, data.size());
    torch::Tensor xo = data.x.narrow(0, 0, k), xa = r.x_adv.narrow(0, 0, k);
    const double lo = model->meta().clip_min, hi = model->meta().clip_max;
    torch::Tensor amp = amplify_perturbation(xa - xo) * (hi - lo) + lo;
    // True and predicted class beside each pair.
    auto name = [&](const torch::Tensor& t) { return class_label(model->meta(), data, t.item<int64_t>()); };
    std::vector<std::vector<std::string>> captions;
    for (int64_t i = 0; i < k; ++i)
      captions.push_back({"true  " + name(data.y[i]), "clean " + name(clean_pred[i]), "adv   " + name(r.adv_pred[i])});
    write_image_grid(dir + "/grid.png", {xo, xa, amp}, lo, hi, shape[1] <= 32 ? 3 : 1, captions);
    files.push_back("grid.png");
  }
  files.push_back("result.json");
  nlohmann::json j = {
      {"attack", attack->name()},
      {"options", attack->options_json()},
      {"model", f.model.describe()},
      {"data", {{"source", data.source}, {"samples", data.size()}, {"fingerprint", data.fingerprint()}}},
      {"clean_accuracy", clean_acc},
      {"adversarial_accuracy", adv_acc},
      {"result", r.to_json()},
      {"preflight", pre.to_json()},
      {"warnings", pre.warnings()},
      {"out", {{"dir", dir}, {"files", files}}}};
  write_json_file(dir + "/result.json", j);
  emit(f.out, j, [&] {
    std::cout << fmt::format("{} on {} samples of {}: success rate {:.4f}, accuracy {:.4f} -> {:.4f}\n", attack->name(),
                             data.size(), data.source, r.success_rate(), clean_acc, adv_acc);
    const auto norms = j["result"]["norms_of_successes"];
    if (norms.contains("l2") && !norms["l2"].is_null())
      std::cout << fmt::format("perturbation of successes: median l2 {:.4f}, median linf {:.4f}\n",
                               norms["l2"]["median"].get<double>(), norms["linf"]["median"].get<double>());
    std::cout << fmt::format("{} queries, {:.1f}s; wrote {}/ ({})\n", r.queries, r.seconds, dir,
                             fmt::join(files, ", "));
    for (const auto& c : pre.checks)
      if (c.verdict != PreflightVerdict::Pass)
        std::cout << "WARNING: preflight " << c.name << ": " << c.detail << "\n";
  });
}

/// Membership, inversion, extraction: the shared flags mapped onto the privacy attacks' own.
void run_privacy(AttackFlags& f) {
  AEGIS_CHECK(!f.n_opt->count(), InvalidArgument,
              "-n/--n selects evasion samples; " << f.attack
                                                 << " takes --candidates (membership), --invert-classes (inversion) "
                                                    "or --budget/--test-limit (extraction)");
  AEGIS_CHECK(!f.norm_opt->count() && !f.targeted_opt->count() && f.params_json.empty() && f.params_kv.empty(),
              InvalidArgument,
              "--norm, --targeted, --params and --param are evasion options, not " << f.attack << "'s");
  PrivacyFlags& p = f.privacy;
  p.out = f.out;
  p.model = f.model;
  p.data = f.data;
  p.attack = f.attack;
  if (f.steps_opt->count()) p.steps = f.steps;
  if (f.eps_opt->count()) p.eps = f.eps;
  std::filesystem::create_directories(f.out_dir);
  p.out_dir = f.out_dir;
  p.result_out = (std::filesystem::path(f.out_dir) / "result.json").string();
  run_privacy_attack(p);
}

void run(AttackFlags& f) {
  f.out.apply();
  if (is_evasion_attack(f.attack)) {
    AEGIS_CHECK(!f.model.path.empty(), InvalidArgument, "give the model with -m FILE");
    return run_evasion(f);
  }
  if (is_privacy_attack(f.attack)) return run_privacy(f);
  std::string names;
  for (const auto& a : attack_catalog()) names += (names.empty() ? "" : ", ") + a.name;
  AEGIS_FAIL(InvalidArgument,
             "unknown attack '" << f.attack << "' (available: " << names << ", membership, inversion, extraction)");
}

}  // namespace

void add_attack_command(CLI::App& app, Context&) {
  auto f = std::make_shared<AttackFlags>();
  std::string list;
  for (const auto& a : attack_catalog()) list += fmt::format("\n  {:<12} {}", a.name, a.summary);
  auto* sub = app.add_subcommand("attack",
                                 "Run one attack on a model; write adversarial examples (NPY), a PNG grid "
                                 "and the result (JSON)");
  sub->footer("Evasion attacks:" + list +
              "\n\nParameters are the attack's registry parameters; unknown ones are rejected by name."
              "\n\nPrivacy and model-theft attacks (options in their groups above):"
              "\n  membership   membership inference (--method threshold|shadow|lira|label-only); ROC curve"
              "\n  inversion    MI-Face class reconstructions (white-box or --gradient estimated), or attribute"
              "\n               inference on a tabular model (--feature); PNG images"
              "\n  extraction   steal a substitute from query answers (--method knockoff|jacobian, --budget);"
              "\n               fidelity, accuracy and transfer of adversarial examples; substitute.pt"
              "\nEach answer is seen as --access full|topk|rounded|label (the gateway's output hardening).");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model, /*required=*/false);
  add_data_flags(sub, f->data, "test");
  sub->add_option("-a,--attack", f->attack, "Attack name (see below)")->required();
  f->eps_opt = sub->add_option("--eps", f->eps, "Perturbation budget (eps-bounded attacks; extraction: transfer, 0.1)");
  f->steps_opt = sub->add_option("--steps", f->steps, "Iterations (inversion: optimisation steps, 300)");
  f->norm_opt = sub->add_option("--norm", f->norm, "linf, l2 or l1 (where the attack has it)");
  f->targeted_opt = sub->add_option("--targeted", f->targeted, "none, random or least-likely");
  sub->add_option("--params", f->params_json, "Parameters as a JSON object, e.g. '{\"restarts\": 3}'");
  sub->add_option("--param", f->params_kv, "One parameter as key=value (repeatable)");
  sub->add_option("-o,--out", f->out_dir, "Output directory")->capture_default_str();
  f->n_opt =
      sub->add_option("-n,--n", f->n, "Attack the first N samples (0 = all; evasion)")->check(CLI::NonNegativeNumber);
  sub->add_option("--batch-size", f->batch_size, "Samples attacked at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--force", f->force,
                "Evasion: run even when a preflight check refuses (data outside the model's range, eps that covers "
                "the input box, no input gradient for a gradient attack); the refusal becomes a warning");
  sub->add_option("--grid", f->grid, "Samples shown in grid.png (0 = none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_privacy_attack_options(sub, f->privacy);
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
