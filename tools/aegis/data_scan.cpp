// aegis data scan: find poisoned samples with a model trained on the data
// (activation clustering, spectral signatures); ids with scores.

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <map>

#include "aegis/core/error.h"
#include "aegis/defenses/data/activation_clustering.h"
#include "aegis/defenses/data/spectral_signatures.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct ScanFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string method = "both";
  double max_valley = 0.2;
  std::string report_out, truth;
  SpectralOptions spectral;
  ActivationClusteringOptions ac;
};

SuspectReport merge(const SuspectReport& a, const SuspectReport& b) {
  std::map<int64_t, Suspect> m;
  for (const auto* r : {&a, &b})
    for (const auto& s : r->suspects) {
      auto [it, fresh] = m.emplace(s.index, s);
      if (!fresh) it->second.reason += "; " + s.reason;
    }
  SuspectReport out;
  out.method = "spectral-signatures+activation-clustering";
  out.samples = a.samples;
  for (auto& [i, s] : m) out.suspects.push_back(s);
  out.details = {{"spectral-signatures", a.to_json()}, {"activation-clustering", b.to_json()}};
  out.details["spectral-signatures"].erase("suspects");
  out.details["activation-clustering"].erase("suspects");
  return out;
}

void run(ScanFlags& f) {
  f.out.apply();
  f.ac.seed(f.out.seed).max_valley(f.max_valley);
  f.spectral.max_valley(f.max_valley);
  Dataset data = load_dataset(f.data.spec("train"));
  auto model = f.model.load(&data);
  SuspectReport r;
  if (f.method == "spectral")
    r = spectral_signatures(*model, data, f.spectral);
  else if (f.method == "activation-clustering")
    r = activation_clustering(*model, data, f.ac);
  else
    r = merge(spectral_signatures(*model, data, f.spectral), activation_clustering(*model, data, f.ac));
  nlohmann::json j = r.to_json();
  j["data"] = data.source;
  j["model"] = f.model.path;
  if (!f.truth.empty()) {  // evaluation against a poison record
    nlohmann::json rec = read_json_file(f.truth);
    AEGIS_CHECK(rec.contains("poisoned") && rec["poisoned"].is_array(), CorruptData,
                f.truth << ": not a poison record");
    std::vector<int64_t> truth;
    for (const auto& e : rec["poisoned"]) truth.push_back(e.at("index").get<int64_t>());
    auto add = [&](const std::string& key, const std::vector<int64_t>& flagged) {
      j["evaluation"][key] = score_detection(flagged, truth).to_json();
    };
    add("combined", r.indices());
    if (f.method == "both")
      for (const char* m : {"spectral-signatures", "activation-clustering"}) {
        std::vector<int64_t> flagged;
        for (const auto& s : r.suspects)
          if (s.reason.find(m == std::string("spectral-signatures") ? "spectral" : "activation") != std::string::npos)
            flagged.push_back(s.index);
        add(m, flagged);
      }
  }
  if (!f.report_out.empty()) write_json_file(f.report_out, j);
  emit(f.out, j, [&] {
    std::cout << fmt::format("{}: {} of {} samples suspected\n", r.method, r.suspects.size(), r.samples);
    std::map<int64_t, int64_t> per_class;
    for (const auto& s : r.suspects) per_class[s.label]++;
    for (auto [c, n] : per_class) std::cout << fmt::format("  class {}: {} suspects\n", c, n);
    if (j.contains("evaluation"))
      for (auto& [k, v] : j["evaluation"].items())
        std::cout << fmt::format("  {} vs record: precision {:.3f} recall {:.3f}\n", k, v["precision"].get<double>(),
                                 v["recall"].get<double>());
    if (!f.report_out.empty()) std::cout << "report saved to " << f.report_out << "\n";
  });
}

}  // namespace

void add_data_scan_command(CLI::App& app, Context&) {
  auto f = std::make_shared<ScanFlags>();
  auto* group = subcommand_group(app, "data", "Validate, scan, filter and track training data");
  auto* sub = group->add_subcommand("scan",
                                    "Find poisoned samples with a model trained on the data "
                                    "(activation clustering, spectral signatures)");
  add_output_flags(sub, f->out);
  add_positional_data(sub, f->data);
  add_data_flags(sub, f->data, "train");
  add_model_flags(sub, f->model, true);
  sub->add_option("--method", f->method, "spectral, activation-clustering, or both (union)")
      ->check(CLI::IsMember({"spectral", "activation-clustering", "both"}))
      ->capture_default_str();
  sub->add_option("--expected-fraction", f->spectral.expected_fraction_,
                  "Spectral: flag the top 1.5 x this fraction of every class (0 = gap rule: flag a group "
                  "only when an empty gap separates it)")
      ->capture_default_str();
  sub->add_option("--max-valley", f->max_valley,
                  "Gap rule of both methods: a split is flagged when the density between the two groups dips to at "
                  "most this fraction of the lower peak")
      ->check(CLI::Range(0.0, 1.0).description("in (0, 1)"))
      ->capture_default_str();
  sub->add_option("--max-cluster-fraction", f->ac.max_cluster_fraction_,
                  "Clustering: largest share of a flagged cluster")
      ->capture_default_str();
  sub->add_option("--min-silhouette", f->ac.min_silhouette_, "Clustering: silhouette a flagged split needs")
      ->capture_default_str();
  sub->add_option("--out", f->report_out, "Also write the report (JSON) here, for aegis data filter --from");
  sub->add_option("--truth", f->truth, "A poison.json record: also report precision and recall against it");
  sub->description(sub->get_description() + ". " + 
      "--model should be a model trained on DATA (it carries the "
      "backdoor if DATA is poisoned).");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
