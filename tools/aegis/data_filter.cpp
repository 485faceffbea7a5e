// aegis data filter: remove the samples reports suspect and write the cleaned
// dataset with a record of what was removed and why.

#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "aegis/defenses/data/filter.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct FilterFlags {
  OutputFlags out;
  DataFlags data;
  std::vector<std::string> from;
  std::string out_dir = "filtered";
};

void run(FilterFlags& f) {
  f.out.apply();
  Dataset data = load_dataset(f.data.spec("train"));
  std::vector<Suspect> all;
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& path : f.from) {
    nlohmann::json j = read_json_file(path);
    auto s = SuspectReport::suspects_from_json(j);
    AEGIS_CHECK(!j.contains("samples") || j["samples"].get<int64_t>() == data.size(), InvalidArgument,
                path << " describes " << j["samples"].get<int64_t>() << " samples but the data has " << data.size());
    sources.push_back({{"report", path},
                       {"sha256", sha256_file(path)},
                       {"method", j.value("method", "")},
                       {"suspects", int64_t(s.size())}});
    all.insert(all.end(), s.begin(), s.end());
  }
  FilterResult r = filter_dataset(data, all);
  r.sources = sources;
  r.save(f.out_dir);
  nlohmann::json j = r.to_json();
  j.erase("removed");
  j["out_dir"] = f.out_dir;
  emit(f.out, j, [&] {
    std::cout << fmt::format("removed {} of {} samples, kept {}\n", r.removed.size(), data.size(), r.kept.size());
    std::cout << fmt::format("wrote {0}/x.npy, {0}/y.npy and the record {0}/filter.json\n", f.out_dir);
  });
}

}  // namespace

void add_data_filter_command(CLI::App& app, Context&) {
  auto f = std::make_shared<FilterFlags>();
  auto* group = subcommand_group(app, "data", "Validate, scan, filter and track training data");
  auto* sub = group->add_subcommand("filter",
                                    "Remove suspected samples; write the cleaned set and what was "
                                    "removed, and why");
  add_output_flags(sub, f->out);
  add_positional_data(sub, f->data);
  add_data_flags(sub, f->data, "train");
  sub->add_option("--from", f->from, "Report(s) of aegis data scan or data check (their \"suspects\")")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--out-dir", f->out_dir, "Directory for x.npy, y.npy and filter.json")->capture_default_str();
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
