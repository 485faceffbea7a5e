// `aegis attack --attack membership|inversion|extraction`: membership
// inference, model inversion (MI-Face, and attribute inference on tabular
// models) and model extraction against a model, as a black-box thief would
// see it through --access (full, topk, rounded, label), with results as JSON
// and artefacts (ROC curve, images, the stolen substitute) in the output
// directory. attack.cpp owns the subcommand and dispatches here.

#include "privacy_attack.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "aegis/attacks/extraction/jacobian_augmentation.h"
#include "aegis/attacks/extraction/knockoff.h"
#include "aegis/attacks/inference/attribute_inference.h"
#include "aegis/attacks/inference/membership_label_only.h"
#include "aegis/attacks/inference/membership_lira.h"
#include "aegis/attacks/inference/membership_shadow.h"
#include "aegis/attacks/inference/membership_threshold.h"
#include "aegis/attacks/inference/model_inversion.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/core/progress.h"
#include "aegis/serve/remote_classifier.h"
#include "commands.h"

namespace aegis::cli {

namespace {

namespace fs = std::filesystem;

OutputAccess access_of(const PrivacyFlags& f) {
  return OutputAccess().mode(parse_answer_mode(f.access)).top_k(f.top_k).decimals(f.decimals);
}

Dataset load_split(const PrivacyFlags& f, const std::string& split) {
  DataFlags d = f.data;
  d.split = split;
  d.limit = 0;
  return load_dataset(d.spec(split));
}

/// Training recipe for shadow models: the victim's (from its provenance) when
/// recorded.
SurrogateModelOptions shadow_recipe(const Classifier& model, const PrivacyFlags& f) {
  SurrogateModelOptions s;
  TrainOptions t = TrainOptions().epochs(10).lr(2e-3);
  const auto& prov = model.meta().provenance;
  if (prov.contains("training") && prov["training"].is_object() && prov["training"].contains("options")) {
    const auto& tr = prov["training"]["options"];
    if (tr.contains("epochs")) t.epochs(tr["epochs"].get<int64_t>());
    if (tr.contains("lr")) t.lr(tr["lr"].get<double>());
    if (tr.contains("weight_decay")) t.weight_decay(tr["weight_decay"].get<double>());
    if (tr.contains("batch_size")) t.batch_size(tr["batch_size"].get<int64_t>());
    if (tr.contains("schedule") && tr["schedule"].is_string()) t.schedule(tr["schedule"].get<std::string>());
  }
  if (f.shadow_epochs > 0) t.epochs(f.shadow_epochs);
  s.train(t);
  return s;
}

nlohmann::json run_membership(PrivacyFlags& f, Classifier& model) {
  std::string method = f.method.empty() ? "threshold" : f.method;
  AEGIS_CHECK(f.candidates >= 1, InvalidArgument, "--candidates must be >= 1");
  Dataset train = load_split(f, "train"), test = load_split(f, "test");
  AEGIS_CHECK(test.size() > f.candidates, InvalidArgument,
              "the test split has " << test.size() << " records, not more than --candidates " << f.candidates);
  Dataset members = train.head(f.candidates);
  Dataset nonmembers = test.head(f.candidates);
  int64_t extra = std::min(f.attacker_records, test.size() - f.candidates);
  Dataset attacker = test.subset(torch::arange(f.candidates, f.candidates + extra, torch::kLong));
  MembershipResult r;
  if (method == "threshold") {
    r = threshold_membership(model, members, nonmembers,
                             ThresholdMembershipOptions().signal(f.signal).access(access_of(f)));
  } else if (method == "shadow") {
    r = shadow_membership(model, attacker, members, nonmembers,
                          ShadowMembershipOptions()
                              .shadow_models(f.shadow_models > 0 ? f.shadow_models : 4)
                              .shadow(shadow_recipe(model, f))
                              .access(access_of(f))
                              .seed(f.out.seed));
  } else if (method == "lira") {
    int64_t shadow_records = f.shadow_train_records;
    const auto& prov = model.meta().provenance;
    if (shadow_records == 0 && prov.contains("training") && prov["training"].is_object() &&
        prov["training"].contains("data") && prov["training"]["data"].contains("samples"))
      shadow_records = std::min(prov["training"]["data"]["samples"].get<int64_t>(), attacker.size());
    r = lira_membership(model, attacker, members, nonmembers,
                        LiraOptions()
                            .shadow_models(f.shadow_models > 0 ? f.shadow_models : 8)
                            .shadow_train_records(shadow_records)
                            .shadow(shadow_recipe(model, f))
                            .access(access_of(f))
                            .seed(f.out.seed));
  } else if (method == "label-only") {
    r = label_only_membership(
        model, members, nonmembers,
        LabelOnlyMembershipOptions().perturbations(f.perturbations).noise_std(f.noise_std).seed(f.out.seed));
  } else {
    AEGIS_FAIL(InvalidArgument, "unknown membership method '" << method << "' (threshold, shadow, lira, label-only)");
  }
  nlohmann::json j = r.to_json();
  j["candidates"] = {{"members", "first " + std::to_string(members.size()) + " records of the training split"},
                     {"nonmembers", "first " + std::to_string(nonmembers.size()) + " records of the test split"}};
  if (!f.out_dir.empty()) {
    write_json_file((fs::path(f.out_dir) / "membership_roc.json").string(), j["metrics"]["roc"]);
    j["artefacts"] = {(fs::path(f.out_dir) / "membership_roc.json").string()};
  }
  return j;
}

nlohmann::json run_inversion(PrivacyFlags& f, Classifier& model) {
  if (f.feature >= 0) {  // attribute inference on a tabular model
    Dataset all = load_dataset(f.data.spec("train"));
    Dataset targets = all.head(f.candidates);
    auto r = attribute_inference(model, targets, all, AttributeInferenceOptions(f.feature).access(access_of(f)));
    return r.to_json();
  }
  AEGIS_CHECK(model.meta().input_shape.size() == 3, InvalidArgument,
              "MI-Face inverts image models; for a tabular model give "
              "--feature to run attribute inference");
  DataFlags d = f.data;
  d.limit = f.reference_limit;
  Dataset reference = load_dataset(d.spec("train"));
  InversionOptions o = InversionOptions()
                           .gradient(f.gradient)
                           .objective(f.objective)
                           .init(f.init)
                           .classes(f.classes)
                           .steps(f.steps)
                           .lr(f.lr)
                           .tv_weight(f.tv_weight)
                           .l2_weight(f.l2_weight)
                           .samples(f.samples)
                           .sigma(f.sigma)
                           .access(access_of(f))
                           .seed(f.out.seed);
  InversionResult r = mi_face(model, o, &reference);
  nlohmann::json j = r.to_json();
  j["options"] = o.to_json();
  if (!f.out_dir.empty()) {
    const auto& m = model.meta();
    auto grid = ImageGridOptions().columns(r.classes.numel()).scale(3).range(m.clip_min, m.clip_max);
    std::string rec = (fs::path(f.out_dir) / "inversion.png").string();
    std::string means = (fs::path(f.out_dir) / "class_means.png").string();
    write_tiled_png(rec, r.reconstructions, grid);
    write_tiled_png(means, r.class_means.index_select(0, r.classes), grid);
    j["artefacts"] = {rec, means};
  }
  return j;
}

nlohmann::json run_extraction(PrivacyFlags& f, Classifier& victim) {
  std::string method = f.method.empty() ? "knockoff" : f.method;
  Dataset test = load_split(f, "test").head(f.test_limit);
  Dataset pool;
  if (f.query_data == "noise") {
    pool = noise_queries(victim.meta(), std::max<int64_t>({f.budget, f.seed_size, 1}), f.out.seed);
  } else if (f.query_data == "train" || f.query_data == "test") {
    pool = load_split(f, f.query_data);
    if (f.query_data == "test") {  // keep evaluation records out of the thief's pool
      AEGIS_CHECK(pool.size() > test.size(), InvalidArgument, "the test split is too small to split off a query set");
      pool = pool.subset(torch::arange(test.size(), pool.size(), torch::kLong));
    }
  } else {
    pool = load_dataset(DataSpec(f.query_data));
  }
  pool.source = f.query_data == "train" || f.query_data == "test" ? f.data.data + ":" + f.query_data : f.query_data;
  SurrogateModelOptions sub = SurrogateModelOptions()
                                  .arch(f.substitute_arch)
                                  .train(TrainOptions().epochs(f.substitute_epochs).lr(2e-3).seed(f.out.seed));
  auto extract = [&](int64_t budget) {
    if (method == "knockoff")
      return knockoff_extraction(
          victim, pool, KnockoffOptions().budget(budget).access(access_of(f)).substitute(sub).seed(f.out.seed));
    if (method == "jacobian")
      return jacobian_extraction(victim, pool,
                                 JacobianAugmentationOptions()
                                     .budget(budget)
                                     .seed_size(std::min(f.seed_size, budget))
                                     .access(access_of(f))
                                     .substitute(sub)
                                     .seed(f.out.seed));
    AEGIS_FAIL(InvalidArgument, "unknown extraction method '" << method << "' (knockoff, jacobian)");
  };
  TransferOptions t = TransferOptions().eps(f.eps).samples(f.transfer_samples).seed(f.out.seed);
  std::vector<int64_t> budgets = f.budgets.empty() ? std::vector<int64_t>{f.budget} : f.budgets;
  auto curve = extraction_curve(victim, test, budgets, extract, t);
  const auto& last = curve.back();
  nlohmann::json j = last.extraction.to_json();
  j["evaluation"] = last.evaluation.to_json();
  if (curve.size() > 1) j["curve"] = curve_to_json(curve);
  if (!f.out_dir.empty()) {
    std::string path = (fs::path(f.out_dir) / "substitute.pt").string();
    fs::create_directories(f.out_dir);
    last.extraction.substitute->save(path);
    j["artefacts"] = {path};
  }
  return j;
}

}  // namespace

void run_privacy_attack(PrivacyFlags& f) {
  f.out.apply();
  access_of(f).validate();
  AEGIS_CHECK(!f.model.path.empty(), InvalidArgument,
              "give the model: -m FILE, or -m http://HOST:PORT/v2/models/NAME for a served one");
  std::shared_ptr<Classifier> model = f.model.load_classifier();
  nlohmann::json j;
  if (f.attack == "membership")
    j = run_membership(f, *model);
  else if (f.attack == "inversion")
    j = run_inversion(f, *model);
  else if (f.attack == "extraction")
    j = run_extraction(f, *model);
  else
    AEGIS_FAIL(InvalidArgument, "unknown attack '" << f.attack << "' (membership, inversion, extraction)");
  j["model"] = f.model.path;
  if (auto* remote = dynamic_cast<serve::RemoteClassifier*>(model.get())) j["requests"] = remote->requests();
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  emit(f.out, j, [&] {
    std::cout << fmt::format("{} ({}), answers: {}\n", j.value("attack", j.value("method", f.attack)),
                             j.value("atlas", ""),
                             j.contains("access") ? j["access"].value("mode", f.access) : f.access);
    if (f.attack == "membership") {
      const auto& m = j["metrics"];
      std::cout << fmt::format(
          "AUC {:.3f}, TPR@0.1%FPR {:.3f}, TPR@1%FPR "
          "{:.3f}, best balanced accuracy {:.3f}",
          m["auc"].get<double>(), m["tpr_at_0.1pct_fpr"].get<double>(), m["tpr_at_1pct_fpr"].get<double>(),
          m["best_balanced_accuracy"].get<double>());
      std::cout << fmt::format(" ({} members, {} non-members, {} queries)\n", m["members"].get<int64_t>(),
                               m["nonmembers"].get<int64_t>(), j["queries"].get<int64_t>());
    } else if (j.contains("closest_to_own_fraction")) {
      std::cout << fmt::format(
          "{} classes inverted with {} queries: {:.0f}% "
          "closest to their own class mean, "
          "mean MSE {:.4f}",
          j["classes"].size(), j["queries"].get<int64_t>(), 100 * j["closest_to_own_fraction"].get<double>(),
          j["mean_mse_to_own_class_mean"].get<double>());
      if (j.contains("mean_ssim_to_own_class_mean"))
        std::cout << fmt::format(", mean SSIM {:.3f}", j["mean_ssim_to_own_class_mean"].get<double>());
      std::cout << "\n";
    } else if (j.contains("baseline_accuracy")) {
      std::cout << fmt::format(
          "feature {} recovered for {:.1f}% of {} records "
          "(marginal baseline {:.1f}%)\n",
          j["feature"].get<int64_t>(), 100 * j["accuracy"].get<double>(), j["targets"].get<int64_t>(),
          100 * j["baseline_accuracy"].get<double>());
    } else if (j.contains("evaluation")) {
      auto print = [](int64_t budget, const nlohmann::json& e) {
        std::cout << fmt::format(
            "budget {:>6}: fidelity {:.3f}, substitute "
            "accuracy {:.3f} (victim {:.3f}), "
            "transfer {:.3f} vs noise {:.3f}\n",
            budget, e["fidelity"].get<double>(), e["substitute_accuracy"].get<double>(),
            e["victim_accuracy"].get<double>(), e["transfer"]["transfer_rate"].get<double>(),
            e["transfer"]["noise_rate"].get<double>());
      };
      if (j.contains("curve"))
        for (const auto& p : j["curve"]) print(p["budget"].get<int64_t>(), p["evaluation"]);
      else
        print(j["budget"].get<int64_t>(), j["evaluation"]);
    }
    if (j.contains("artefacts"))
      for (const auto& a : j["artefacts"]) std::cout << "wrote " << a.get<std::string>() << "\n";
  });
}

bool is_privacy_attack(const std::string& name) {
  return name == "membership" || name == "inversion" || name == "extraction";
}

void add_privacy_attack_options(CLI::App* sub, PrivacyFlags& f) {
  auto* gc = "Membership, inversion and extraction";
  sub->add_option("--method", f.method,
                  "membership: threshold (default), shadow, lira, label-only; "
                  "extraction: knockoff (default), jacobian")
      ->group(gc);
  sub->add_option("--access", f.access, "What each answer reveals: full, topk, rounded, label")
      ->group(gc)
      ->check(CLI::IsMember({"full", "topk", "rounded", "label"}))
      ->capture_default_str();
  sub->add_option("--top-k", f.top_k, "Classes returned with --access topk")->group(gc)->capture_default_str();
  sub->add_option("--decimals", f.decimals, "Decimals kept with --access rounded")->group(gc)->capture_default_str();
  auto* g = "Membership inference (members: first N training records; non-members: first N test records)";
  sub->add_option("--candidates", f.candidates, "N members and N non-members (or targets for --feature)")
      ->group(g)
      ->capture_default_str();
  sub->add_option("--signal", f.signal, "threshold signal: loss, confidence, max-confidence")
      ->group(g)
      ->check(CLI::IsMember({"loss", "confidence", "max-confidence"}))
      ->capture_default_str();
  sub->add_option("--shadow-models", f.shadow_models, "Shadow models (default 4 shadow, 8 lira)")->group(g);
  sub->add_option("--shadow-epochs", f.shadow_epochs, "Shadow training epochs (default: the victim's recorded recipe)")
      ->group(g);
  sub->add_option("--shadow-train-records", f.shadow_train_records,
                  "lira: records each shadow trains on (default: the victim's recorded training-set size, "
                  "else half the attacker's records)")
      ->group(g);
  sub->add_option("--attacker-records", f.attacker_records, "Attacker's own records (test split, after the candidates)")
      ->group(g)
      ->capture_default_str();
  sub->add_option("--perturbations", f.perturbations, "label-only: noisy copies per candidate")
      ->group(g)
      ->capture_default_str();
  sub->add_option("--noise-std", f.noise_std, "label-only: noise std")->group(g)->capture_default_str();
  auto* gi = "Model inversion (MI-Face; --steps: its optimisation steps) and attribute inference";
  sub->add_option("--gradient", f.gradient, "white-box or estimated (queries only)")
      ->group(gi)
      ->check(CLI::IsMember({"white-box", "estimated"}))
      ->capture_default_str();
  sub->add_option("--objective", f.objective, "Score raised: logit (centred logit) or log-prob")
      ->group(gi)
      ->check(CLI::IsMember({"logit", "log-prob"}))
      ->capture_default_str();
  sub->add_option("--init", f.init, "Start image: min (black), mid or random")
      ->group(gi)
      ->check(CLI::IsMember({"min", "mid", "random"}))
      ->capture_default_str();
  sub->add_option("--lr", f.lr, "Step size on the input")->group(gi)->capture_default_str();
  sub->add_option("--tv-weight", f.tv_weight, "Total-variation prior weight")->group(gi)->capture_default_str();
  sub->add_option("--l2-weight", f.l2_weight, "L2 prior weight (pull to the start)")->group(gi)->capture_default_str();
  sub->add_option("--samples", f.samples, "estimated: directions per step")->group(gi)->capture_default_str();
  sub->add_option("--sigma", f.sigma, "estimated: smoothing")->group(gi)->capture_default_str();
  sub->add_option("--invert-classes", f.classes, "Classes to invert (default all), comma-separated")
      ->group(gi)
      ->delimiter(',');
  sub->add_option("--reference-limit", f.reference_limit, "Training records for the class means (0 = all)")->group(gi);
  sub->add_option("--feature", f.feature, "Tabular model: run attribute inference on this feature index")->group(gi);
  auto* ge = "Model extraction (--eps: the transfer attack's Linf budget on the substitute)";
  sub->add_option("--budget", f.budget, "Victim queries")->group(ge)->capture_default_str();
  sub->add_option("--budgets", f.budgets, "Several budgets for a curve, comma-separated")->group(ge)->delimiter(',');
  sub->add_option("--query-data", f.query_data,
                  "Thief's query set: train or test (split of --data; test keeps the evaluation part out), noise, "
                  "or a data path")
      ->group(ge)
      ->capture_default_str();
  sub->add_option("--substitute-arch", f.substitute_arch, "auto, mlp, cnn, resnet")
      ->group(ge)
      ->check(CLI::IsMember({"auto", "mlp", "cnn", "resnet"}))
      ->capture_default_str();
  sub->add_option("--substitute-epochs", f.substitute_epochs, "Substitute training epochs")
      ->group(ge)
      ->capture_default_str();
  sub->add_option("--test-limit", f.test_limit, "Test records for fidelity and accuracy")
      ->group(ge)
      ->capture_default_str();
  sub->add_option("--transfer-samples", f.transfer_samples, "Transfer attack: samples")
      ->group(ge)
      ->capture_default_str();
  sub->add_option("--seed-size", f.seed_size, "jacobian: initial seed set")->group(ge)->capture_default_str();
}

}  // namespace aegis::cli
