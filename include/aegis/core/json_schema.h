#pragma once
/// A validator for the subset of JSON Schema (draft 2020-12 keywords) that
/// aegis's own schemas use: type (string or list), properties, required,
/// additionalProperties (bool or schema), items, enum, const, minimum,
/// maximum, minItems, minLength, pattern, $ref to "#/$defs/<name>". Any other
/// keyword in a schema is an error, so a schema never silently asks for more
/// than is checked.
///
///   auto errors = validate_json_schema(report, schema);   // empty when valid

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aegis {

/// Every violation as "<json pointer>: <what>"; empty when `instance` conforms.
/// Throws InvalidArgument when the schema uses a keyword outside the subset.
std::vector<std::string> validate_json_schema(const nlohmann::json& instance, const nlohmann::json& schema);

}  // namespace aegis
