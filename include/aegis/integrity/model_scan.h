#pragma once
/// Unsafe model file scanning: finds code a model file would run when loaded,
/// without loading it. TorchScript and PyTorch files are zip archives holding
/// pickles, and unpickling imports and calls whatever the pickle names. The
/// scanner parses the zip's central directory and walks each pickle's opcodes
/// (nothing is executed or unpickled), reports every imported global (GLOBAL,
/// STACK_GLOBAL, INST) outside an allow-list of safe torch / collections /
/// builtins names, and flags archive tricks (path traversal names,
/// overlapping or duplicate entries, zip bombs by ratio), unexpected files in
/// a torch archive, and raw pickle files.
///
///   ScanReport r = scan_model("model.pt");
///   if (r.worst() >= Severity::High) refuse(r.findings);
///
/// A clean report means no import outside the allow-list was found; it does
/// not prove a file harmless (a TorchScript graph can still compute anything
/// its operators allow, and formats other than zip/pickle are not parsed).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace aegis {

enum class Severity { Info = 0, Low, Medium, High, Critical };
const char* severity_name(Severity s);

struct ScanFinding {
  Severity severity = Severity::Info;
  std::string file;    ///< the scanned file
  std::string entry;   ///< archive entry ("" for the file itself)
  std::string kind;    ///< "import", "path_traversal", "zip_bomb", "raw_pickle", ...
  std::string detail;  ///< what was found, e.g. "os.system via STACK_GLOBAL (called by REDUCE)"
  nlohmann::json to_json() const;
};

/// One import a pickle makes.
struct PickleImport {
  std::string module, name;
  std::string opcode;   ///< GLOBAL, STACK_GLOBAL or INST ("STACK_GLOBAL?" when unresolved)
  bool called = false;  ///< followed by REDUCE / NEWOBJ / OBJ / INST (it gets called)
};

struct PickleWalk {
  std::vector<PickleImport> imports;
  size_t opcodes = 0;
  int protocol = 0;
  bool complete = false;  ///< reached STOP
  std::string error;      ///< why the walk stopped early ("" if it did not)
};

/// Walks the opcodes of one pickle stream (or several back to back) without
/// executing anything. Never throws on bad input: `error` says where it stopped.
PickleWalk walk_pickle(std::string_view bytes, size_t max_opcodes = 50'000'000);

/// How dangerous importing module.name is: Info for the allow-list, Critical
/// for known code-execution and system access (os, subprocess, builtins.eval,
/// socket, ...), High for anything else.
Severity classify_import(const std::string& module, const std::string& name);

struct ScanOptions {
  uint64_t max_pickle_bytes_ = uint64_t{512} << 20;  ///< pickles larger than this are reported, not read
  double max_ratio_ = 100.0;                           ///< compression ratio flagged as a zip bomb
  uint64_t max_total_bytes_ = uint64_t{64} << 30;      ///< declared uncompressed total flagged as a zip bomb
  std::vector<std::string> allow_;                      ///< extra "module.name" (or "module.*") to allow

  ScanOptions& max_pickle_bytes(uint64_t v) { max_pickle_bytes_ = v; return *this; }
  ScanOptions& max_ratio(double v) { max_ratio_ = v; return *this; }
  ScanOptions& max_total_bytes(uint64_t v) { max_total_bytes_ = v; return *this; }
  ScanOptions& allow(std::vector<std::string> v) { allow_ = std::move(v); return *this; }
};

struct ScanReport {
  std::vector<ScanFinding> findings;  ///< Low and above, plus Info notes
  size_t files_scanned = 0;
  size_t pickles_scanned = 0;
  std::vector<std::string> allowed_imports;  ///< distinct allow-listed imports seen
  Severity worst() const;
  /// No finding of Medium or above.
  bool clean() const { return worst() < Severity::Medium; }
  nlohmann::json to_json() const;
};

/// Scans a file (zip archive, raw pickle) or every file under a directory
/// (symlinks are reported, not followed). Throws NotFound for a missing path.
ScanReport scan_model(const std::string& path, const ScanOptions& options = {});
/// Scans bytes held in memory as if they were the file `name`.
ScanReport scan_bytes(std::string_view bytes, const std::string& name, const ScanOptions& options = {});

}  // namespace aegis
