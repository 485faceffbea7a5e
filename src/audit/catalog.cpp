#include "aegis/audit/catalog.h"

#include <cstdlib>
#include <fstream>

#include "aegis/core/error.h"

namespace aegis {

namespace {

const CatalogEntry* find(const std::vector<CatalogEntry>& v, const std::string& id) {
  for (const auto& e : v)
    if (e.id == id) return &e;
  return nullptr;
}

std::vector<CatalogEntry> entries(const nlohmann::json& list, const std::string& origin, const char* what) {
  AEGIS_CHECK(list.is_array() && !list.empty(), CorruptData, origin << ": '" << what << "' must be a non-empty list");
  std::vector<CatalogEntry> out;
  for (const auto& e : list) {
    AEGIS_CHECK(e.is_object() && e.contains("id") && e.contains("name") && e["id"].is_string() && e["name"].is_string(),
                CorruptData, origin << ": every entry of '" << what << "' needs a string id and name");
    std::string id = e["id"].get<std::string>();
    AEGIS_CHECK(!find(out, id), CorruptData, origin << ": duplicate id '" << id << "' in '" << what << "'");
    out.push_back({id, e["name"].get<std::string>(), e.value("description", "")});
  }
  return out;
}

}  // namespace

const CatalogEntry* Catalog::find_atlas(const std::string& id) const { return find(atlas, id); }
const CatalogEntry* Catalog::find_owasp(const std::string& id) const { return find(owasp, id); }

std::string Catalog::atlas_name(const std::string& id) const {
  const CatalogEntry* e = find_atlas(id);
  AEGIS_CHECK(e, NotFound, "MITRE ATLAS technique '" << id << "' is not in the catalogue");
  return e->name;
}

std::string Catalog::owasp_name(const std::string& id) const {
  const CatalogEntry* e = find_owasp(id);
  AEGIS_CHECK(e, NotFound, "OWASP ML Top 10 category '" << id << "' is not in the catalogue");
  return e->name;
}

Catalog Catalog::parse(const nlohmann::json& j, const std::string& origin) {
  AEGIS_CHECK(j.is_object(), CorruptData, origin << ": the catalogue must be a JSON object");
  Catalog c;
  AEGIS_CHECK(j.contains("catalog_version") && j["catalog_version"].is_number_integer(), CorruptData,
              origin << ": missing integer 'catalog_version'");
  c.version = j["catalog_version"].get<int>();
  AEGIS_CHECK(j.contains("atlas") && j["atlas"].is_object() && j["atlas"].contains("techniques"), CorruptData,
              origin << ": missing 'atlas.techniques'");
  AEGIS_CHECK(j.contains("owasp_ml") && j["owasp_ml"].is_object() && j["owasp_ml"].contains("categories"), CorruptData,
              origin << ": missing 'owasp_ml.categories'");
  c.atlas = entries(j["atlas"]["techniques"], origin, "atlas.techniques");
  c.owasp = entries(j["owasp_ml"]["categories"], origin, "owasp_ml.categories");
  return c;
}

Catalog Catalog::load(const std::string& path) {
  std::ifstream in(path);
  AEGIS_CHECK(in, NotFound,
              "threat catalogue " << path << " not found (set AEGIS_DATA_DIR to aegis's data/ directory)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, path << ": not valid JSON: " << e.what());
  }
  return parse(j, path);
}

std::string data_dir() {
  if (const char* env = std::getenv("AEGIS_DATA_DIR"); env && *env) return env;
  return AEGIS_DATA_DIR;
}

const Catalog& default_catalog() {
  static const Catalog c = Catalog::load(data_dir() + "/catalog/atlas-owasp.json");
  return c;
}

}  // namespace aegis
