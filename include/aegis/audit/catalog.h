#pragma once
/// The threat catalogue: MITRE ATLAS techniques and OWASP Machine Learning
/// Security Top 10 categories, kept as versioned JSON data in the repository
/// (data/catalog/atlas-owasp.json) and loaded at run time, so that findings
/// name published threats and a test proves every check maps to real ids.
///
///   const Catalog& c = default_catalog();
///   c.atlas_name("AML.T0043");   // "Craft Adversarial Data"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aegis {

struct CatalogEntry {
  std::string id;
  std::string name;
  std::string description;
};

struct Catalog {
  int version = 0;
  std::vector<CatalogEntry> atlas;  ///< ATLAS techniques and sub-techniques
  std::vector<CatalogEntry> owasp;  ///< OWASP ML01..ML10

  const CatalogEntry* find_atlas(const std::string& id) const;
  const CatalogEntry* find_owasp(const std::string& id) const;
  /// Names for ids; throw NotFound for an id the catalogue lacks.
  std::string atlas_name(const std::string& id) const;
  std::string owasp_name(const std::string& id) const;

  /// Parses the catalogue; throws CorruptData naming what is missing.
  static Catalog parse(const nlohmann::json& j, const std::string& origin);
  static Catalog load(const std::string& path);
};

/// The directory of aegis's run-time data: $AEGIS_DATA_DIR when set, else
/// the AEGIS_DATA_DIR the library was compiled with (the source tree's data/).
std::string data_dir();

/// data_dir()/catalog/atlas-owasp.json, loaded once.
const Catalog& default_catalog();

}  // namespace aegis
