#include "aegis/defenses/data/suspects.h"

#include <algorithm>
#include <unordered_set>

#include "aegis/core/error.h"

namespace aegis {

std::vector<int64_t> SuspectReport::indices() const {
  std::vector<int64_t> out;
  for (const auto& s : suspects) out.push_back(s.index);
  return out;
}

nlohmann::json SuspectReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : suspects)
    list.push_back({{"index", s.index}, {"label", s.label}, {"score", s.score}, {"reason", s.reason}});
  return {{"method", method},
          {"samples", samples},
          {"suspect_count", int64_t(suspects.size())},
          {"details", details},
          {"suspects", list}};
}

std::vector<Suspect> SuspectReport::suspects_from_json(const nlohmann::json& j) {
  AEGIS_CHECK(j.is_object() && j.contains("suspects") && j["suspects"].is_array(), CorruptData,
              "report has no \"suspects\" array (expected the JSON of aegis "
              "data scan or data check)");
  std::vector<Suspect> out;
  try {
    for (const auto& e : j["suspects"]) {
      Suspect s;
      s.index = e.at("index").get<int64_t>();
      s.label = e.value("label", int64_t{-1});
      s.score = e.value("score", 0.0);
      s.reason = e.value("reason", std::string(j.value("method", "unknown")));
      AEGIS_CHECK(s.index >= 0, CorruptData, "suspect index " << s.index << " is negative");
      out.push_back(s);
    }
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "bad suspect entry: " << e.what());
  }
  return out;
}

nlohmann::json DetectionScore::to_json() const {
  return {{"flagged", flagged},
          {"truth", truth},
          {"true_positives", true_positives},
          {"precision", precision},
          {"recall", recall}};
}

DetectionScore score_detection(const std::vector<int64_t>& flagged, const std::vector<int64_t>& truth) {
  std::unordered_set<int64_t> t(truth.begin(), truth.end()), f(flagged.begin(), flagged.end());
  DetectionScore s;
  s.flagged = int64_t(f.size());
  s.truth = int64_t(t.size());
  for (int64_t i : f) s.true_positives += t.count(i);
  s.precision = s.flagged ? double(s.true_positives) / double(s.flagged) : 0.0;
  s.recall = s.truth ? double(s.true_positives) / double(s.truth) : 0.0;
  return s;
}

}  // namespace aegis
