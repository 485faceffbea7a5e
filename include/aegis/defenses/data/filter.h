#pragma once
/// Filtering: removes suspected samples (from a scan, a validation, or any
/// list of indices with reasons) and records exactly what was removed and
/// why, with the fingerprints of the data before and after, so a provenance
/// ledger can chain the cleaned set to its source.
///
///   SuspectReport scan = spectral_signatures(*model, data);
///   FilterResult f = filter_dataset(data, scan.suspects);
///   f.save("clean/");     // clean/x.npy, clean/y.npy, clean/filter.json

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/defenses/data/suspects.h"

namespace aegis {

struct RemovedSample {
  int64_t index = 0;  ///< position in the input dataset
  int64_t label = 0;
  std::string sample_hash;           ///< the sample's leaf hash (Dataset::leaf_hashes)
  std::vector<std::string> reasons;  ///< every report that flagged it
  double max_score = 0;
};

struct FilterResult {
  Dataset cleaned;                     ///< the kept samples, in their original order
  std::vector<int64_t> kept;           ///< input positions of the kept samples
  std::vector<RemovedSample> removed;  ///< ascending by index
  std::string input_fingerprint, output_fingerprint;
  std::vector<int64_t> removed_per_class;
  nlohmann::json sources = nlohmann::json::array();  ///< the reports used (set by the caller)

  /// {"format": "aegis-filter-record/1", fingerprints, counts, removed per
  /// class, sources,
  ///  "removed": [{index, label, sample_hash, reasons, max_score}],
  ///  "ledger": {operation, input, output, ...} for a provenance ledger entry}.
  nlohmann::json to_json() const;
  /// Writes `dir`/x.npy, `dir`/y.npy and `dir`/filter.json.
  void save(const std::string& dir) const;
};

/// Throws InvalidArgument when a suspect's index is outside the data.
FilterResult filter_dataset(const Dataset& data, const std::vector<Suspect>& suspects);

}  // namespace aegis
