// aegis explain: attributions for a model's decisions on samples of a
// dataset (saliency, gradient x input, Integrated Gradients, any of them
// through a noise tunnel, and the black-box occlusion, ablation, KernelSHAP
// and LIME, which also run on a model behind a gateway), written as NPY, a
// PNG grid (input, heat map, overlay, with the true and predicted class) and
// a JSON with per-sample scores, completeness gaps and LIME's fidelity;
// Grad-CAM on the model's feature maps; counterfactuals (the smallest change
// to another class, next to the input in the grid); and the global
// explanations: the surrogate tree and per-class prototypes.

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "aegis/explain/attribution_metrics.h"
#include "aegis/explain/counterfactual.h"
#include "aegis/explain/metrics.h"
#include "aegis/explain/prototypes.h"
#include "aegis/explain/registry.h"
#include "aegis/explain/surrogate_tree.h"
#include "commands.h"
#include "explain_adversarial.h"

namespace aegis::cli {

namespace {

struct ExplainFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string method = "ig";
  std::string tunnel = "none";
  std::string target = "predicted";
  int64_t steps = 32;
  std::string rule = "gauss-legendre";
  std::string baseline = "zero";
  double baseline_value = 0;
  double blur_sigma = 5;
  int64_t samples = 50;
  double stdev = 0.15;
  bool signed_saliency = false;
  int64_t window = 4;
  int64_t stride = 2;
  std::string mask = "auto";
  int64_t patch = 4;
  int64_t segments = 50;
  double compactness = 0.1;
  int64_t max_exact = 12;
  int64_t background = 0;
  double kernel_width = 0.25;
  double ridge = 1.0;
  std::vector<std::string> metrics;
  int64_t curve_steps = 20;
  int64_t depth = 10;
  int64_t fit_samples = 10000;
  int64_t min_leaf = 5;
  int64_t layer = 0;
  std::string to = "runner-up";
  std::string norm = "l2";
  std::string prototype = "mean";
  int64_t top = 10;
  int64_t n = 16;
  int64_t batch_size = 64;
  std::string out_dir = "explain-out";
  ExplainAdversarialFlags adversarial;
};

/// The flags as make_explainer's parameters: only those the user gave or
/// that the method takes, so a flag that does not apply is refused by name.
nlohmann::json explainer_params(const ExplainFlags& f, CLI::App* sub) {
  nlohmann::json p = {{"seed", f.out.seed}};
  auto given = [&](const char* flag) { return sub->get_option(flag)->count() > 0; };
  if (f.method == "saliency")
    p["absolute"] = !f.signed_saliency;
  else if (f.method == "gradcam" && given("--signed"))
    p["relu"] = !f.signed_saliency;
  else if (given("--signed"))
    p["absolute"] = !f.signed_saliency;
  if (given("--layer")) p["layer"] = f.layer;
  if (f.method == "counterfactual" || given("--to")) {
    int64_t c = -1;
    if (f.to != "runner-up") {
      try {
        size_t used = 0;
        c = std::stoll(f.to, &used);
        if (used != f.to.size()) c = -1;
      } catch (const std::exception&) {
      }
      AEGIS_CHECK(c >= 0, InvalidArgument, "--to is runner-up or a class index, got '" << f.to << "'");
    }
    p["to"] = c < 0 ? nlohmann::json("runner-up") : nlohmann::json(c);
  }
  if (given("--norm")) p["norm"] = f.norm;
  if (f.method == "ig" || given("--steps")) p["steps"] = f.steps;
  if (given("--rule")) p["rule"] = f.rule;
  if (given("--baseline")) p["baseline"] = f.baseline;
  if (given("--baseline-value")) p["baseline_value"] = f.baseline_value;
  if (given("--blur-sigma")) p["blur_sigma"] = f.blur_sigma;
  if (given("--tunnel")) p["tunnel"] = f.tunnel;
  if (given("--samples")) p["samples"] = f.samples;
  if (given("--stdev")) p["stdev"] = f.stdev;
  if (given("--window")) p["window"] = f.window;
  if (given("--stride")) p["stride"] = f.stride;
  if (given("--mask")) p["mask"] = f.mask;
  if (given("--patch")) p["patch"] = f.patch;
  if (given("--segments")) p["segments"] = f.segments;
  if (given("--compactness")) p["compactness"] = f.compactness;
  if (given("--max-exact")) p["max_exact"] = f.max_exact;
  if (given("--kernel-width")) p["kernel_width"] = f.kernel_width;
  if (given("--ridge")) p["ridge"] = f.ridge;
  return p;
}

/// Heat map per sample: |attribution| summed over channels, scaled so its
/// 99th percentile is 1 (one hot pixel does not wash out the rest). [N, 1, H, W].
torch::Tensor heat_maps(const torch::Tensor& values) {
  torch::Tensor h = values.abs().sum(1, true);
  torch::Tensor flat = h.flatten(1);
  torch::Tensor top = std::get<0>(flat.sort(1)).select(1, int64_t(0.99 * double(flat.size(1) - 1)));
  return (h / top.clamp_min(1e-12).view({-1, 1, 1, 1})).clamp(0, 1);
}

/// --method tree: a global surrogate fitted to the model's predictions on
/// training samples, measured on the held-out samples of --data.
void run_tree(ExplainFlags& f, CLI::App* sub) {
  AEGIS_CHECK(f.metrics.empty(), InvalidArgument, "--metrics applies to attribution methods, not to the tree");
  AEGIS_CHECK(f.fit_samples >= 1, InvalidArgument, "--fit-samples must be >= 1, got " << f.fit_samples);
  const SurrogateTreeOptions options =
      SurrogateTreeOptions().max_depth(f.depth).min_samples_leaf(f.min_leaf).batch_size(f.batch_size);
  options.validate();
  DataFlags ff = f.data;
  ff.split.clear();
  ff.limit = f.fit_samples;
  Dataset fit = load_dataset(ff.spec("train"));
  f.data.limit = sub->count("-n") ? f.n : 1000;
  Dataset held = load_dataset(f.data.spec("test"));
  if (fit.source == held.source) {
    // One file (no train/test splits): hold out its first samples, fit on the rest.
    DataFlags all = f.data;
    all.limit = 0;
    Dataset whole = load_dataset(all.spec("test"));
    const int64_t n = held.size();
    AEGIS_CHECK(whole.size() > n, InvalidArgument,
                "the data has " << whole.size() << " samples: none left to fit the tree after the " << n
                                << " held out (-n)");
    fit = whole.subset(torch::arange(n, std::min(whole.size(), n + f.fit_samples)));
    fit.source = whole.source + fmt::format(" (samples {} on)", n);
  }
  AEGIS_CHECK(held.size() > 0 && fit.size() > 0, InvalidArgument, "no samples to fit or measure the tree on");
  auto model = f.model.load_classifier(&held);
  Progress bar("surrogate tree", 1);
  SurrogateTreeResult r = fit_surrogate_tree(*model, fit, held, options);
  bar.finish(fmt::format("depth {}, {} leaves", r.tree.depth(), r.tree.leaves()));

  namespace fs = std::filesystem;
  fs::create_directories(f.out_dir);
  const std::string dir = fs::path(f.out_dir).string();
  std::vector<std::string> names = model->meta().class_names;
  if (names.empty()) names = held.class_names;
  const std::string rules = r.tree.rules(model->meta().input_shape, names);
  std::ofstream(dir + "/rules.txt") << rules;
  nlohmann::json j = r.to_json();
  j["method"] = "tree";
  j["options"] = options.to_json();
  j["model"] = f.model.path;
  j["fit_data"] = fit.source;
  j["held_out_data"] = held.source;
  j["tree"] = r.tree.to_json();
  std::ofstream(dir + "/tree.json") << j.dump(2) << "\n";
  j.erase("tree");
  emit(f.out, j, [&] {
    std::cout << fmt::format(
        "surrogate tree (CART on the model's predictions): fitted on {} samples of {}, measured on {} held-out "
        "samples of {} ({:.1f} s)\n",
        r.fit_samples, fit.source, r.held_out_samples, held.source, r.seconds);
    std::cout << "depth  fidelity (held out)  fidelity (fit)  accuracy\n";
    for (size_t d = 1; d < r.fidelity_by_depth.size(); ++d)
      std::cout << fmt::format("{:>5}  {:>19.3f}  {:>14.3f}  {:>8.3f}\n", d, r.fidelity_by_depth[d],
                               r.train_fidelity_by_depth[d], r.accuracy_by_depth[d]);
    std::cout << fmt::format("the model's own accuracy on the held-out samples: {:.3f}\n", r.model_accuracy);
    std::cout << "wrote " << dir << "/rules.txt, tree.json\n";
  });
}

/// --method prototypes: one image per class, the mean of its most confident
/// samples in --data (-n of them, default 1000) or maximised by MI-Face.
void run_prototypes(ExplainFlags& f, CLI::App* sub) {
  AEGIS_CHECK(f.metrics.empty(), InvalidArgument, "--metrics applies to attribution methods, not to prototypes");
  auto given = [&](const char* flag) { return sub->get_option(flag)->count() > 0; };
  for (const char* flag : {"--tunnel", "--rule", "--baseline", "--window", "--mask", "--background", "--layer", "--to",
                           "--norm", "--depth"})
    AEGIS_CHECK(!given(flag), InvalidArgument, flag << " does not apply to --method prototypes");
  PrototypeOptions o;
  o.kind(parse_prototype_kind(f.prototype)).top_k(f.top).batch_size(f.batch_size);
  AEGIS_CHECK(o.kind_ == PrototypeKind::Mean || !given("--top"), InvalidArgument,
              "--top applies to --prototype mean (the most confident samples averaged)");
  AEGIS_CHECK(o.kind_ == PrototypeKind::Maximise || !given("--steps"), InvalidArgument,
              "--steps applies to --prototype maximise (MI-Face steps)");
  if (o.kind_ == PrototypeKind::Maximise) {
    InversionOptions inv = o.inversion_;
    inv.seed(f.out.seed);
    if (given("--steps")) inv.steps(f.steps);
    o.inversion(inv);
  }
  o.validate();
  // Maximise reads the data only for the model's shape and class names.
  f.data.limit = sub->count("-n") ? f.n : o.kind_ == PrototypeKind::Mean ? 1000 : 16;
  Dataset data = load_dataset(f.data.spec("test"));
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "no samples to take prototypes from");
  auto model = f.model.load_classifier(&data);
  const ModelMeta& meta = model->meta();
  AEGIS_CHECK(o.kind_ == PrototypeKind::Mean || model->has_gradients(), Unsupported,
              "--prototype maximise follows the model's gradients; a served model gives none (use mean)");
  ClassPrototypes r = class_prototypes(*model, &data, o);

  namespace fs = std::filesystem;
  fs::create_directories(f.out_dir);
  const std::string dir = fs::path(f.out_dir).string();
  save_npy(r.images, dir + "/prototypes.npy");
  save_npy(r.classes, dir + "/classes.npy");
  nlohmann::json j = r.to_json();
  j["method"] = "prototypes";
  j["options"] = o.to_json();
  j["model"] = f.model.path;
  j["data"] = data.source;
  if (o.kind_ == PrototypeKind::Mean) j["samples"] = data.size();
  for (size_t i = 0; i < j["classes"].size(); ++i)
    j["classes"][i]["name"] = class_label(meta, data, j["classes"][i]["class"].get<int64_t>());
  std::string png;
  if (r.images.dim() == 4) {
    png = dir + "/prototypes.png";
    write_tiled_png(png, r.images,
                    ImageGridOptions()
                        .columns(r.images.size(0))
                        .scale(r.images.size(2) <= 32 ? 3 : 1)
                        .range(meta.clip_min, meta.clip_max));
    j["grid"] = png;
  }
  std::ofstream(dir + "/prototypes.json") << j.dump(2) << "\n";
  emit(f.out, j, [&] {
    if (o.kind_ == PrototypeKind::Mean)
      std::cout << fmt::format(
          "class prototypes (mean of the {} most confident samples of each class) from {} samples of {} ({} model "
          "evaluations, {:.2f} s)\n",
          o.top_k_, data.size(), data.source, r.queries, r.seconds);
    else
      std::cout << fmt::format("class prototypes (activation maximisation, MI-Face, {} steps) ({} model evaluations, "
                               "{:.2f} s)\n",
                               o.inversion_.steps_, r.queries, r.seconds);
    for (int64_t i = 0; i < r.classes.size(0); ++i) {
      const int64_t c = r.classes[i].item<int64_t>();
      std::string line = fmt::format("  {:>3} {:<14} logit {:>8.3f}  p {:.3f}", c, class_label(meta, data, c),
                                     r.score[i].item<double>(), r.probability[i].item<double>());
      if (r.counts.defined())
        line += fmt::format("  ({} samples, mean confidence {:.3f})", r.counts[i].item<int64_t>(),
                            r.mean_confidence[i].item<double>());
      if (r.start_score.defined()) line += fmt::format("  (start logit {:.3f})", r.start_score[i].item<double>());
      std::cout << line << "\n";
    }
    std::cout << "wrote " << dir << "/prototypes.npy, classes.npy, prototypes.json";
    if (!png.empty()) std::cout << ", prototypes.png (one image per class)";
    std::cout << "\n";
  });
}

/// Counterfactuals batch by batch, joined like Explainer::explain_batched.
CounterfactualResult find_counterfactuals(Counterfactual& cf, Classifier& model, const torch::Tensor& x,
                                          const torch::Tensor& from, int64_t batch_size) {
  AEGIS_CHECK(batch_size >= 1, InvalidArgument, "batch size must be >= 1, got " << batch_size);
  Progress bar("counterfactuals", x.size(0));
  std::vector<CounterfactualResult> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    const int64_t b = std::min(batch_size, x.size(0) - i);
    parts.push_back(cf.find(model, x.narrow(0, i, b), from.narrow(0, i, b)));
    bar.advance(b);
  }
  bar.finish();
  auto cat = [&](auto get) {
    std::vector<torch::Tensor> v;
    for (auto& p : parts) v.push_back(get(p));
    return torch::cat(v);
  };
  CounterfactualResult r = parts[0];
  r.attribution.values = cat([](CounterfactualResult& p) { return p.attribution.values; });
  r.attribution.target = cat([](CounterfactualResult& p) { return p.attribution.target; });
  r.attribution.score = cat([](CounterfactualResult& p) { return p.attribution.score; });
  r.counterfactual = cat([](CounterfactualResult& p) { return p.counterfactual; });
  r.to = cat([](CounterfactualResult& p) { return p.to; });
  r.predicted = cat([](CounterfactualResult& p) { return p.predicted; });
  r.success = cat([](CounterfactualResult& p) { return p.success; });
  r.l1 = cat([](CounterfactualResult& p) { return p.l1; });
  r.l2 = cat([](CounterfactualResult& p) { return p.l2; });
  r.attribution.queries = 0;
  r.attribution.seconds = 0;
  for (auto& p : parts) {
    r.attribution.queries += p.attribution.queries;
    r.attribution.seconds += p.attribution.seconds;
  }
  return r;
}

void run(ExplainFlags& f, CLI::App* sub) {
  f.out.apply();
  if (f.method == "tree" || f.method == "prototypes" || f.method == "counterfactual")
    AEGIS_CHECK(!f.adversarial.any(), InvalidArgument, "--adversarial and --robustness apply to attribution methods");
  if (f.method == "tree") return run_tree(f, sub);
  if (f.method == "prototypes") return run_prototypes(f, sub);
  check_explain_adversarial_flags(f.adversarial);
  AEGIS_CHECK(f.n >= 1, InvalidArgument, "-n must be >= 1, got " << f.n);
  AEGIS_CHECK(f.background >= 0, InvalidArgument, "--background must be >= 0, got " << f.background);
  torch::Tensor background;
  if (f.background > 0) {
    // The background set: samples drawn (with the seed) from the training split.
    DataFlags bf = f.data;
    bf.split.clear();
    bf.limit = 0;
    Dataset pool = load_dataset(bf.spec("train"));
    AEGIS_CHECK(pool.size() >= f.background, InvalidArgument,
                "--background " << f.background << " needs as many training samples, the data has " << pool.size());
    background =
        pool.x.index_select(0, torch::randperm(pool.size(), make_generator(f.out.seed, "background"), torch::kLong)
                                   .narrow(0, 0, f.background));
  }
  auto explainer = make_explainer(f.method, explainer_params(f, sub), background);
  f.data.limit = f.n;
  Dataset data = load_dataset(f.data.spec("test"));
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "no samples to explain");
  auto model = f.model.load_classifier(&data);
  const ModelMeta& meta = model->meta();

  torch::Tensor pred = model->predict(data.x);
  torch::Tensor target;
  if (f.target == "predicted") {
    target = pred;
  } else if (f.target == "true") {
    target = data.y;
  } else {
    int64_t c = -1;
    try {
      c = std::stoll(f.target);
    } catch (const std::exception&) {
    }
    AEGIS_CHECK(c >= 0 && c < meta.num_classes, InvalidArgument,
                "--target is predicted, true or a class in [0, " << meta.num_classes << "), got '" << f.target << "'");
    target = torch::full({data.size()}, c, torch::kLong);
  }

  const std::vector<std::string> known = {"deletion",   "insertion",   "sanity",    "faithfulness",
                                           "infidelity", "sensitivity", "sparseness"};
  for (const auto& m : f.metrics)
    AEGIS_CHECK(std::find(known.begin(), known.end(), m) != known.end(), InvalidArgument,
                "unknown metric '" << m
                                   << "' (deletion, insertion, sanity, faithfulness, infidelity, sensitivity, "
                                      "sparseness)");
  auto script_model = std::dynamic_pointer_cast<ScriptClassifier>(model);
  const bool sanity = std::find(f.metrics.begin(), f.metrics.end(), "sanity") != f.metrics.end();
  AEGIS_CHECK(!sanity || script_model, Unsupported,
              "the sanity check re-randomises the model's weights: it needs a model file, not a served model");

  auto counterfactual = std::dynamic_pointer_cast<Counterfactual>(explainer);
  AEGIS_CHECK(!counterfactual || f.metrics.empty(), InvalidArgument,
              "--metrics measures attributions; a counterfactual reports its success and size instead");
  CounterfactualResult cf;
  if (counterfactual) cf = find_counterfactuals(*counterfactual, *model, data.x, target, f.batch_size);
  Attribution a = counterfactual ? cf.attribution : explainer->explain_batched(*model, data.x, target, f.batch_size);
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::string> metric_lines;
  for (const auto& m : f.metrics) {
    if (m == "sanity") {
      RandomisationCheck s =
          model_randomisation_check(*script_model, *explainer, data.x, RandomisationCheckOptions().seed(f.out.seed));
      metrics["sanity"] = s.to_json();
      metric_lines.push_back(fmt::format(
          "sanity check (model randomisation): rank correlation with the original maps {:.3f} once every layer is "
          "random (|maps|: {:.3f}); {}",
          s.final_similarity, s.similarity_abs.back(),
          s.passed ? "passed" : "FAILED: the maps do not depend on the model's weights"));
    } else if (m == "faithfulness" || m == "infidelity" || m == "sensitivity" || m == "sparseness") {
      torch::Tensor v;
      std::string what;
      if (m == "faithfulness") {
        v = faithfulness_correlation(*model, data.x, a, FaithfulnessOptions().seed(f.out.seed));
        what = "faithfulness correlation (1 = the map predicts the drop when features are removed)";
      } else if (m == "infidelity") {
        v = infidelity(*model, data.x, a, InfidelityOptions().seed(f.out.seed));
        what = "infidelity (0 = the map predicts the output change under noise, 1 = no better than nothing)";
      } else if (m == "sensitivity") {
        v = max_sensitivity(*model, *explainer, data.x, a, SensitivityOptions().seed(f.out.seed));
        what =
            "max-sensitivity (relative change of the map under uniform noise of 0.02 of the input range; lower = "
            "steadier)";
      } else {
        v = sparseness(a.values);
        what = "sparseness (Gini index of |map|; higher = fewer features carry it)";
      }
      metrics[m] = {{"per_sample", std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel())},
                    {"mean", v.mean().item<double>()},
                    {"median", v.median().item<double>()}};
      metric_lines.push_back(fmt::format("{}: mean {:.3f}, median {:.3f}", what, v.mean().item<double>(),
                                         v.median().item<double>()));
    } else {
      PerturbationCurves c = perturbation_curves(
          *model, data.x, a,
          PerturbationCurveOptions().insertion(m == "insertion").steps(f.curve_steps).seed(f.out.seed));
      metrics[m] = c.to_json();
      const auto better = int64_t(std::lround(c.better_than_random_fraction() * double(data.size())));
      metric_lines.push_back(fmt::format("{} AUC {:.3f} (random order {:.3f}): better than random on {} of {} samples",
                                         m, c.auc.mean().item<double>(), c.random_auc.mean().item<double>(), better,
                                         data.size()));
    }
  }

  namespace fs = std::filesystem;
  fs::create_directories(f.out_dir);
  const std::string dir = fs::path(f.out_dir).string();
  save_npy(a.values, dir + "/attributions.npy");
  save_npy(a.target, dir + "/target.npy");
  if (counterfactual) {
    save_npy(cf.counterfactual, dir + "/counterfactual.npy");
    save_npy(cf.to, dir + "/to.npy");
  }
  nlohmann::json j = counterfactual ? cf.to_json() : a.to_json();
  j["model"] = f.model.path;
  j["data"] = f.data.data;
  j["samples_explained"] = data.size();
  if (!f.metrics.empty()) j["metrics"] = metrics;
  for (int64_t i = 0; i < data.size(); ++i) {
    j["samples"][size_t(i)]["label"] = data.y[i].item<int64_t>();
    j["samples"][size_t(i)]["predicted"] = pred[i].item<int64_t>();
  }
  std::string grid;
  if (data.x.dim() == 4) {
    const double lo = meta.clip_min, hi = meta.clip_max;
    torch::Tensor x01 = ((data.x - lo) / (hi - lo)).clamp(0, 1);
    torch::Tensor gray = x01.mean(1, true).expand({-1, 3, -1, -1});
    torch::Tensor heat = heat_maps(a.values);
    torch::Tensor heat_rgb = heat.expand({-1, 3, -1, -1});
    torch::Tensor overlay =
        torch::cat({torch::max(gray.narrow(1, 0, 1) * 0.6, heat), gray.narrow(1, 1, 2) * 0.6 * (1 - heat)}, 1);
    torch::Tensor input = x01.size(1) == 3 ? x01 : gray;
    auto name = [&](int64_t c) { return class_label(meta, data, c); };
    std::vector<std::vector<std::string>> captions;
    for (int64_t i = 0; i < data.size(); ++i) {
      captions.push_back({"true   " + name(data.y[i].item<int64_t>()), "pred   " + name(pred[i].item<int64_t>()),
                          "target " + name(a.target[i].item<int64_t>())});
      if (counterfactual)
        captions.back().push_back(fmt::format("to {} {} L2 {:.2f}", name(cf.to[i].item<int64_t>()),
                                              cf.success[i].item<bool>() ? "ok" : "FAILED", cf.l2[i].item<double>()));
    }
    grid = dir + "/grid.png";
    if (counterfactual) {
      // Input, counterfactual, the change (grey = none, amplified per sample), its size per pixel.
      torch::Tensor cf01 = ((cf.counterfactual - lo) / (hi - lo)).clamp(0, 1);
      torch::Tensor change = amplify_perturbation(a.values);
      if (x01.size(1) != 3) {
        cf01 = cf01.mean(1, true).expand({-1, 3, -1, -1});
        change = change.mean(1, true).expand({-1, 3, -1, -1});
      }
      write_image_grid(grid, {input, cf01, change, heat_rgb}, 0.0, 1.0, data.x.size(2) <= 32 ? 3 : 1, captions);
    } else {
      write_image_grid(grid, {input, heat_rgb, overlay}, 0.0, 1.0, data.x.size(2) <= 32 ? 3 : 1, captions);
    }
    j["grid"] = grid;
  }
  if (f.adversarial.any())
    run_explain_adversarial(f.adversarial, *model, *explainer, data, a, f.target == "predicted", f.out.seed,
                            f.batch_size, dir, j, metric_lines);
  std::ofstream(dir + "/explanation.json") << j.dump(2) << "\n";
  emit(f.out, j, [&] {
    std::cout << fmt::format("{} on {} samples ({} model evaluations, {:.2f} s)\n", a.method, data.size(), a.queries,
                             a.seconds);
    if (counterfactual) {
      const int64_t ok = cf.success.sum().item<int64_t>();
      std::cout << fmt::format("counterfactuals ({} change, to {}): {} of {} reached their class", f.norm, f.to, ok,
                               data.size());
      if (ok > 0)
        std::cout << fmt::format("; median size of the change: L1 {:.3f}, L2 {:.3f}",
                                 cf.l1.masked_select(cf.success).median().item<double>(),
                                 cf.l2.masked_select(cf.success).median().item<double>());
      std::cout << "\n";
    }
    if (a.gap.defined())
      std::cout << fmt::format(
          "completeness: |sum of attributions - (f(x) - f(baseline))| at most {:.3g}, median {:.3g}\n",
          a.gap.abs().max().item<double>(), a.gap.abs().median().item<double>());
    if (a.fidelity.defined())
      std::cout << fmt::format("local fidelity (weighted R^2 of the surrogate): min {:.3f}, median {:.3f}\n",
                               a.fidelity.min().item<double>(), a.fidelity.median().item<double>());
    for (const auto& line : metric_lines) std::cout << line << "\n";
    std::cout << "wrote " << dir << "/attributions.npy, target.npy, explanation.json";
    if (counterfactual) std::cout << ", counterfactual.npy, to.npy";
    if (!grid.empty())
      std::cout << (counterfactual ? ", grid.png (input, counterfactual, change, its size)"
                                   : ", grid.png (input, heat map, overlay)");
    std::cout << "\n";
  });
}

}  // namespace

void add_explain_command(CLI::App& app, Context&) {
  auto f = std::make_shared<ExplainFlags>();
  auto* sub = app.add_subcommand("explain", "Attributions: which input features a model's decision rests on");
  sub->footer(
      "Examples:\n"
      "  aegis explain --model model.pt --data fashion-mnist --method ig -n 16 --out explain-out\n"
      "  aegis explain --model model.pt --method ig --tunnel smoothgrad --samples 20 --baseline blur\n"
      "  aegis explain --model model.pt --method ig --metrics deletion,insertion,sanity\n"
      "  aegis explain --model model.pt --method kernelshap --background 50 --mask grid --patch 7\n"
      "  aegis explain --model http://host:8080/v2/models/m --data x.npy --method lime --samples 500\n"
      "  aegis explain --model model.pt --method tree --depth 10 --fit-samples 20000 -n 2000\n"
      "  aegis explain --model model.pt --method saliency --adversarial pgd --eps 0.1 -n 8\n"
      "  aegis explain --model model.pt --method ig --robustness --eps 0.05 -n 16\n"
      "  aegis explain --model model.pt --method gradcam --layer 0\n"
      "  aegis explain --model model.pt --method counterfactual --to runner-up --norm l1 -n 8\n"
      "  aegis explain --model model.pt --method prototypes --prototype mean --top 20 -n 2000\n"
      "Methods: saliency, gradient-x-input, ig (Integrated Gradients), smoothgrad, smoothgrad-sq, vargrad\n"
      "(the noise tunnel around signed saliency; --tunnel puts any of these inside one), and the\n"
      "black-box occlusion, ablation, kernelshap, lime, which need only the model's outputs, so\n"
      "they also explain a model served by a gateway.\n"
      "Attributions explain the target class's logit; the completeness gap is reported for\n"
      "methods with a baseline (ig, gradient-x-input, kernelshap), LIME's local fidelity for lime.\n"
      "tree is global: a decision tree fitted to the model's predictions on --fit-samples training\n"
      "samples, printed as rules, with its fidelity to the model per depth on the -n held-out samples.\n"
      "gradcam weighs a feature map of the model (--layer; default the deepest spatial one) by the\n"
      "mean gradient of the target logit: a coarse map of where the evidence sits (--signed: no ReLU).\n"
      "counterfactual finds the smallest change that moves each sample from --target to --to (C&W\n"
      "for --norm l2, elastic net for a sparse l1 change) and writes the counterfactuals, the change\n"
      "(as attributions.npy) and a grid of input, counterfactual and change.\n"
      "prototypes is global: one image per class, the mean of its --top most confident samples among\n"
      "the -n of --data (default 1000), or --prototype maximise (MI-Face activation maximisation).\n"
      "--adversarial ATTACK explains the samples' adversarial versions beside the clean ones\n"
      "(adversarial.png: clean input, clean map, adversarial input, adversarial map; per sample the\n"
      "top-k overlap and L2 distance of the normalised maps). --robustness attacks the explanation\n"
      "itself (Ghorbani et al. 2019: the class stays, the map moves) and reports the top-k overlap left.");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--method", f->method,
                  "saliency, gradient-x-input, ig, eg (expected gradients: --background N), smoothgrad, "
                  "smoothgrad-sq, vargrad, gradcam, occlusion, ablation, "
                  "kernelshap, lime, counterfactual; tree (a global surrogate decision tree), prototypes (per class)")
      ->capture_default_str();
  sub->add_option("--tunnel", f->tunnel, "none, smoothgrad, smoothgrad-sq or vargrad around the method")
      ->capture_default_str();
  sub->add_option("--target", f->target, "Class to explain: predicted, true, or a class index")->capture_default_str();
  sub->add_option("--steps", f->steps,
                  "ig: quadrature points; counterfactual: optimiser steps per search round (200); prototypes "
                  "maximise: MI-Face steps (300)")
      ->capture_default_str();
  sub->add_option("--rule", f->rule, "ig: gauss-legendre, riemann-left, riemann-right, riemann-middle, trapezoid")
      ->capture_default_str();
  sub->add_option("--baseline", f->baseline, "ig and the black-box methods: zero, constant, blur, uniform")
      ->capture_default_str();
  sub->add_option("--baseline-value", f->baseline_value, "The constant baseline's value")->capture_default_str();
  sub->add_option("--blur-sigma", f->blur_sigma, "The blurred baseline's sigma in pixels")->capture_default_str();
  sub->add_option("--samples", f->samples,
                  "Noise tunnel: noisy copies per input (50); eg: (reference, alpha) draws (100); kernelshap: "
                  "coalitions (0 = 2 groups + 2048); "
                  "lime: perturbed samples (1000)");
  sub->add_option("--stdev", f->stdev, "Noise tunnel: noise std as a fraction of the input range")
      ->capture_default_str();
  sub->add_flag("--signed", f->signed_saliency, "saliency: keep the gradient's sign; gradcam: no ReLU on the map");
  sub->add_option("--layer", f->layer,
                  "gradcam: the feature map, an index into the model's feature_maps() (negative from the end; "
                  "default the deepest spatial map)");
  sub->add_option("--to", f->to, "counterfactual: the class to move to, runner-up or a class index")
      ->capture_default_str();
  sub->add_option("--norm", f->norm, "counterfactual: l2 (Carlini-Wagner) or l1 (elastic net: sparse changes)")
      ->capture_default_str();
  sub->add_option("--prototype", f->prototype,
                  "prototypes: mean (of the most confident samples of each class) or maximise (MI-Face)")
      ->capture_default_str();
  sub->add_option("--top", f->top, "prototypes mean: the most confident samples averaged per class")
      ->capture_default_str();
  sub->add_option("--window", f->window, "occlusion: window side in pixels (features)")->capture_default_str();
  sub->add_option("--stride", f->stride, "occlusion: window stride")->capture_default_str();
  sub->add_option("--mask", f->mask,
                  "ablation, kernelshap, lime: feature groups: auto (grid on images, superpixels for lime), grid, "
                  "superpixels, element")
      ->capture_default_str();
  sub->add_option("--patch", f->patch, "Grid mask: patch side in pixels")->capture_default_str();
  sub->add_option("--segments", f->segments, "Superpixel mask: wanted number of SLIC segments")->capture_default_str();
  sub->add_option("--compactness", f->compactness, "Superpixel mask: SLIC compactness (values in [0, 1])")
      ->capture_default_str();
  sub->add_option("--max-exact", f->max_exact, "kernelshap: up to this many groups, exact Shapley values")
      ->capture_default_str();
  sub->add_option("--background", f->background,
                  "kernelshap: background set of N training samples instead of the baseline (0: the baseline); eg: the "
                  "references (required)")
      ->capture_default_str();
  sub->add_option("--kernel-width", f->kernel_width, "lime: kernel width on the cosine distance")
      ->capture_default_str();
  sub->add_option("--ridge", f->ridge, "lime: L2 penalty of the surrogate")->capture_default_str();
  sub->add_option("--metrics", f->metrics,
                  "Quality metrics: deletion, insertion (AUC against a random order), sanity (model randomisation), "
                  "faithfulness (correlation), infidelity, sensitivity (max-sensitivity), sparseness")
      ->delimiter(',');
  sub->add_option("--curve-steps", f->curve_steps, "deletion/insertion: points on the curve")->capture_default_str();
  sub->add_option("--depth", f->depth, "tree: maximum depth")->capture_default_str();
  sub->add_option("--fit-samples", f->fit_samples, "tree: training samples labelled by the model to fit on")
      ->capture_default_str();
  sub->add_option("--min-leaf", f->min_leaf, "tree: fewest samples in a leaf")->capture_default_str();
  sub->add_option("-n", f->n,
                  "Samples to explain (the first n; tree: held-out samples, prototypes: samples to choose from, "
                  "default 1000)")
      ->capture_default_str();
  sub->add_option("--batch-size", f->batch_size, "Samples per explainer call")->capture_default_str();
  sub->add_option("-o,--out", f->out_dir, "Output directory")->capture_default_str();
  add_explain_adversarial_flags(sub, f->adversarial);
  sub->callback([f, sub] { run(*f, sub); });
}

}  // namespace aegis::cli
