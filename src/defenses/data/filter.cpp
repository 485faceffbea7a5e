#include "aegis/defenses/data/filter.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"

namespace aegis {

nlohmann::json FilterResult::to_json() const {
  nlohmann::json rm = nlohmann::json::array();
  std::map<std::string, int64_t> by_reason;
  for (const auto& s : removed) {
    rm.push_back({{"index", s.index},
                  {"label", s.label},
                  {"sample_hash", s.sample_hash},
                  {"reasons", s.reasons},
                  {"max_score", s.max_score}});
    for (const auto& reason : s.reasons) by_reason[reason]++;
  }
  int64_t input_samples = int64_t(kept.size() + removed.size());
  return {{"format", "aegis-filter-record/1"},
          {"input_fingerprint", input_fingerprint},
          {"output_fingerprint", output_fingerprint},
          {"input_samples", input_samples},
          {"kept_samples", int64_t(kept.size())},
          {"removed_samples", int64_t(removed.size())},
          {"removed_per_class", removed_per_class},
          {"removed_by_reason", by_reason},
          {"sources", sources},
          {"removed", rm},
          {"ledger",
           {{"operation", "filter"},
            {"input", input_fingerprint},
            {"output", output_fingerprint},
            {"removed_samples", int64_t(removed.size())},
            {"sources", sources}}}};
}

void FilterResult::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  AEGIS_CHECK(!ec, Io, "cannot create " << dir << ": " << ec.message());
  save_npy(cleaned.x.to(torch::kFloat).contiguous(), dir + "/x.npy");
  save_npy(cleaned.y.to(torch::kLong).contiguous(), dir + "/y.npy");
  std::ofstream out(dir + "/filter.json");
  AEGIS_CHECK(out.good(), Io, "cannot write " << dir << "/filter.json");
  out << to_json().dump(2) << "\n";
  AEGIS_CHECK(out.good(), Io, "error writing " << dir << "/filter.json");
}

FilterResult filter_dataset(const Dataset& data, const std::vector<Suspect>& suspects) {
  const int64_t n = data.size();
  std::map<int64_t, RemovedSample> removed;
  for (const auto& s : suspects) {
    AEGIS_CHECK(
        s.index >= 0 && s.index < n, InvalidArgument,
        "suspect index " << s.index << " is outside the data (" << n << " samples): wrong report for this data?");
    auto& r = removed[s.index];
    if (r.reasons.empty()) r.max_score = s.score;
    r.index = s.index;
    r.max_score = std::max(r.max_score, s.score);
    if (std::find(r.reasons.begin(), r.reasons.end(), s.reason) == r.reasons.end()) r.reasons.push_back(s.reason);
  }
  FilterResult f;
  std::vector<std::string> leaves = data.leaf_hashes();
  f.input_fingerprint = data.fingerprint();
  const int64_t k = n ? data.y.max().item<int64_t>() + 1 : 0;
  f.removed_per_class.assign(size_t(k), 0);
  auto ya = data.y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    auto it = removed.find(i);
    if (it == removed.end()) {
      f.kept.push_back(i);
      continue;
    }
    it->second.label = ya[i];
    it->second.sample_hash = leaves[size_t(i)];
    f.removed_per_class[size_t(ya[i])]++;
    f.removed.push_back(it->second);
  }
  f.cleaned = data.subset(torch::tensor(f.kept, torch::kLong));
  f.cleaned.source = data.source + " (filtered)";
  f.output_fingerprint = f.cleaned.fingerprint();
  return f;
}

}  // namespace aegis
