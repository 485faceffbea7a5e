#include "aegis/attacks/poisoning/poison.h"

#include <filesystem>
#include <fstream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"

namespace aegis {

nlohmann::json PoisonResult::to_json() const {
  nlohmann::json samples = nlohmann::json::array();
  for (size_t i = 0; i < indices.size(); ++i)
    samples.push_back({{"index", indices[i]}, {"original_label", original_labels[i]}, {"new_label", new_labels[i]}});
  nlohmann::json j = {{"format", "aegis-poison-record/1"},
                      {"attack", attack},
                      {"parameters", parameters},
                      {"samples_total", poisoned.size()},
                      {"poisoned_count", int64_t(indices.size())},
                      {"clean_fingerprint", clean_fingerprint},
                      {"poisoned_fingerprint", poisoned_fingerprint},
                      {"source", poisoned.source},
                      {"poisoned", samples}};
  j["trigger"] = trigger ? trigger->to_json() : nlohmann::json(nullptr);
  j["target_class"] = target_class ? nlohmann::json(*target_class) : nlohmann::json(nullptr);
  return j;
}

void PoisonResult::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  AEGIS_CHECK(!ec, Io, "cannot create " << dir << ": " << ec.message());
  save_npy(poisoned.x.to(torch::kFloat).contiguous(), dir + "/x.npy");
  save_npy(poisoned.y.to(torch::kLong).contiguous(), dir + "/y.npy");
  std::ofstream out(dir + "/poison.json");
  AEGIS_CHECK(out.good(), Io, "cannot write " << dir << "/poison.json");
  out << to_json().dump(2) << "\n";
  AEGIS_CHECK(out.good(), Io, "error writing " << dir << "/poison.json");
}

std::pair<Trigger, int64_t> trigger_from_record(const nlohmann::json& record) {
  AEGIS_CHECK(record.is_object() && record.contains("trigger") && record["trigger"].is_object(), CorruptData,
              "the poison record has no trigger (only backdoor attacks plant one)");
  AEGIS_CHECK(record.contains("target_class") && record["target_class"].is_number_integer(), CorruptData,
              "the poison record has no integer target_class");
  return {Trigger::from_json(record["trigger"]), record["target_class"].get<int64_t>()};
}

}  // namespace aegis
