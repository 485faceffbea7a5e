// aegis data check: validate a dataset at ingestion (shape, range, NaN,
// duplicates with conflicting labels, balance drift, label-noise suspects).

#include <fmt/format.h>

#include <iostream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/defenses/data/validation.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct CheckFlags {
  OutputFlags out;
  DataFlags data;
  std::string reference, reference_labels;
  std::vector<int64_t> expected_shape;
  int64_t classes = 0;
  std::vector<double> range;
  std::string report_out;
  ValidationOptions options;
};

/// NPY data is read without Dataset::validate so NaN and bad labels are
/// reported, not refused; other formats load as usual.
Dataset load_unvalidated(const DataFlags& d, const std::string& split) {
  if (d.data.size() > 4 && d.data.substr(d.data.size() - 4) == ".npy") {
    AEGIS_CHECK(!d.labels.empty(), InvalidArgument, "an .npy of samples needs --labels naming the labels .npy");
    Dataset ds = load_npy(d.data, d.labels);
    return d.limit > 0 ? ds.head(d.limit) : ds;
  }
  return load_dataset(d.spec(split));
}

void run(CheckFlags& f, Context& ctx) {
  f.out.apply();
  if (!f.expected_shape.empty()) f.options.expected_shape(f.expected_shape);
  if (f.classes > 0) f.options.expected_classes(f.classes);
  if (!f.range.empty()) f.options.range(f.range.at(0), f.range.at(1));
  f.options.seed(f.out.seed);
  Dataset data = load_unvalidated(f.data, "train");
  Dataset ref;
  if (!f.reference.empty()) {
    DataFlags rf = f.data;
    rf.data = f.reference;
    rf.labels = f.reference_labels;
    rf.limit = 0;
    ref = load_unvalidated(rf, "test");
  }
  ValidationReport r = validate_data(data, f.options, f.reference.empty() ? nullptr : &ref);
  nlohmann::json j = r.to_json(f.options.max_listed_);
  j["data"] = data.source;
  if (!f.reference.empty()) j["reference"] = ref.source;
  if (!f.report_out.empty()) write_json_file(f.report_out, j);
  if (!r.ok()) ctx.exit_code = 1;
  emit(f.out, j, [&] {
    std::cout << fmt::format("{}: {} samples, {} classes: {}\n", data.source, r.samples, r.class_counts.size(),
                             r.ok() ? "no errors" : "ERRORS FOUND");
    for (const auto& i : r.issues) std::cout << fmt::format("  [{}] {}: {}\n", i.severity, i.check, i.message);
    std::cout << fmt::format(
        "{} samples suspected (see \"suspects\" in the "
        "JSON; aegis data filter --from removes them)\n",
        r.suspects.suspects.size());
    if (!f.report_out.empty()) std::cout << "report saved to " << f.report_out << "\n";
  });
}

}  // namespace

void add_data_check_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<CheckFlags>();
  auto* group = subcommand_group(app, "data", "Validate, scan, filter and track training data");
  auto* sub = group->add_subcommand("check",
                                    "Validate a dataset: shape, range, NaN, "
                                    "duplicates, balance, label noise");
  add_output_flags(sub, f->out);
  add_positional_data(sub, f->data);
  add_data_flags(sub, f->data, "train");
  sub->add_option("--reference", f->reference, "Trusted data of the same population, for class-balance drift");
  sub->add_option("--reference-labels", f->reference_labels, "Labels file for an .npy reference");
  sub->add_option("--expected-shape", f->expected_shape, "Sample shape the data must have, e.g. 1,28,28")
      ->delimiter(',');
  sub->add_option("--classes", f->classes, "Number of classes the labels must stay below");
  sub->add_option("--range", f->range, "Valid value range: min,max (default 0,1)")->delimiter(',')->expected(2);
  sub->add_option("--near-levels", f->options.near_duplicate_levels_,
                  "Quantisation levels for near duplicates (0 = off)")
      ->capture_default_str();
  sub->add_option("--balance-tolerance", f->options.balance_tolerance_,
                  "Largest allowed change of a class's share vs the reference")
      ->capture_default_str();
  sub->add_flag("--label-noise", f->options.label_noise_, "Find label-noise suspects with a cross-validated model");
  sub->add_option("--folds", f->options.folds_, "Cross-validation folds")->capture_default_str();
  sub->add_option("--epochs", f->options.epochs_, "Epochs per fold")->capture_default_str();
  sub->add_option("--confidence", f->options.confidence_, "Probability of another class that makes a suspect")
      ->capture_default_str();
  sub->add_option("--max-listed", f->options.max_listed_, "Groups listed per kind in the report")
      ->capture_default_str();
  sub->add_option("--out", f->report_out, "Also write the report (JSON) here");
  sub->description(sub->get_description() + ". " + 
      "Exit status 1 when an error-level issue is found (NaN, out of "
      "range, conflicting labels, schema).");
  sub->callback([f, &ctx] { run(*f, ctx); });
}

}  // namespace aegis::cli
