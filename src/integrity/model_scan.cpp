// Unsafe model file scanning: zip directory checks and pickle opcode walking,
// nothing executed (see model_scan.h).

#include "aegis/integrity/model_scan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "aegis/core/error.h"
#include "integrity/zip_reader.h"

namespace fs = std::filesystem;

namespace aegis {

namespace {

// ---- the allow-list and the deny-list -----------------------------------------

const std::set<std::string>& safe_names() {
  static const std::set<std::string> s = {
      "torch._utils._rebuild_tensor",
      "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state",
      "torch._utils._rebuild_qtensor",
      "torch._utils._rebuild_sparse_tensor",
      "torch._utils._rebuild_sparse_csr_tensor",
      "torch._utils._rebuild_device_tensor_from_numpy",
      "torch._utils._rebuild_meta_tensor_no_storage",
      "torch._utils._rebuild_nested_tensor",
      "torch._tensor._rebuild_from_type_v2",
      "torch.jit._pickle.build_intlist",
      "torch.jit._pickle.build_tensorlist",
      "torch.jit._pickle.build_doublelist",
      "torch.jit._pickle.build_boollist",
      "torch.jit._pickle.build_tensor_from_id",
      "torch.jit._pickle.restore_type_tag",
      "torch.Size",
      "torch.device",
      "torch.dtype",
      "torch.Tensor",
      "torch.nn.parameter.Parameter",
      "torch.float32",
      "torch.float64",
      "torch.float16",
      "torch.bfloat16",
      "torch.int64",
      "torch.int32",
      "torch.int16",
      "torch.int8",
      "torch.uint8",
      "torch.bool",
      "torch.complex64",
      "torch.complex128",
      "collections.OrderedDict",
      "_codecs.encode",
      "numpy.core.multiarray._reconstruct",
      "numpy.core.multiarray.scalar",
      "numpy._core.multiarray._reconstruct",
      "numpy._core.multiarray.scalar",
      "numpy.ndarray",
      "numpy.dtype",
  };
  return s;
}

const std::set<std::string>& safe_builtins() {
  static const std::set<std::string> s = {"set",       "frozenset", "list",    "dict",  "tuple",
                                          "int",       "float",     "complex", "bool",  "bytes",
                                          "bytearray", "str",       "slice",   "range", "object"};
  return s;
}

// Whole modules whose import means system access or arbitrary code.
const std::set<std::string>& critical_modules() {
  static const std::set<std::string> s = {"os",         "posix",       "nt",
                                          "subprocess", "sys",         "socket",
                                          "shutil",     "pty",         "runpy",
                                          "importlib",  "ctypes",      "multiprocessing",
                                          "webbrowser", "code",        "codeop",
                                          "commands",   "asyncio",     "signal",
                                          "pickle",     "_pickle",     "marshal",
                                          "dill",       "cloudpickle", "requests",
                                          "urllib",     "urllib2",     "urllib3",
                                          "httplib",    "http",        "ftplib",
                                          "smtplib",    "telnetlib",   "socketserver",
                                          "ssl",        "tempfile",    "glob",
                                          "pathlib",    "io",          "_io",
                                          "zipimport",  "pdb",         "bdb",
                                          "timeit",     "trace",       "cProfile",
                                          "profile",    "site",        "distutils",
                                          "setuptools", "pip",         "_posixsubprocess",
                                          "_thread",    "threading"};
  return s;
}

const std::set<std::string>& critical_names() {
  static const std::set<std::string> s = {"builtins.eval",
                                          "builtins.exec",
                                          "builtins.execfile",
                                          "builtins.compile",
                                          "builtins.open",
                                          "builtins.__import__",
                                          "builtins.getattr",
                                          "builtins.setattr",
                                          "builtins.delattr",
                                          "builtins.globals",
                                          "builtins.locals",
                                          "builtins.vars",
                                          "builtins.input",
                                          "builtins.breakpoint",
                                          "builtins.apply",
                                          "builtins.memoryview",
                                          "operator.attrgetter",
                                          "operator.methodcaller",
                                          "operator.itemgetter",
                                          "functools.partial",
                                          "functools.reduce",
                                          "torch.load",
                                          "torch.hub.load",
                                          "torch.hub.load_state_dict_from_url",
                                          "torch.utils.cpp_extension.load",
                                          "torch.utils.cpp_extension.load_inline",
                                          "torch.jit.load",
                                          "torch.storage._load_from_bytes",
                                          "torch.serialization.load",
                                          "numpy.load",
                                          "numpy.testing._private.utils.runstring",
                                          "types.CodeType",
                                          "types.FunctionType"};
  return s;
}

// (C++17: the fuzz targets compile this file with clang in C++17 mode.)
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string top_package(const std::string& module) { return module.substr(0, module.find('.')); }

bool user_allowed(const std::string& full, const std::string& module, const std::vector<std::string>& allow) {
  for (const auto& a : allow) {
    if (a == full) return true;
    if (a.size() > 2 && a.compare(a.size() - 2, 2, ".*") == 0) {
      std::string prefix = a.substr(0, a.size() - 2);
      if (module == prefix || module.rfind(prefix + ".", 0) == 0) return true;
    }
  }
  return false;
}

// ---- pickle opcodes ---------------------------------------------------------------

// How an opcode's argument is encoded.
enum class Arg { None, U1, U2, U4, U8, Line, TwoLines, Len1, Len4, Len8, Unknown };

Arg arg_of(uint8_t op) {
  switch (op) {
    case '(':
    case '.':
    case '0':
    case '1':
    case '2':
    case 'N':
    case 'R':
    case 'a':
    case 'b':
    case 'd':
    case '}':
    case 'e':
    case 'l':
    case ']':
    case 'o':
    case 's':
    case 't':
    case ')':
    case 'u':
    case 'Q':
    case 0x81:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8f:
    case 0x90:
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x97:
    case 0x98:
      return Arg::None;
    case 'K':
    case 'q':
    case 'h':
    case 0x80:
    case 0x82:
      return Arg::U1;
    case 'M':
    case 0x83:
      return Arg::U2;
    case 'J':
    case 'r':
    case 'j':
    case 0x84:
      return Arg::U4;
    case 'G':
    case 0x95:
      return Arg::U8;
    case 'I':
    case 'L':
    case 'F':
    case 'S':
    case 'V':
    case 'p':
    case 'g':
    case 'P':
      return Arg::Line;
    case 'c':
    case 'i':
      return Arg::TwoLines;
    case 'U':
    case 0x8c:
    case 'C':
    case 0x8a:
      return Arg::Len1;
    case 'T':
    case 'X':
    case 'B':
    case 0x8b:
      return Arg::Len4;
    case 0x8d:
    case 0x8e:
    case 0x96:
      return Arg::Len8;
    default:
      return Arg::Unknown;
  }
}

bool is_string_push(uint8_t op) {
  return op == 0x8c || op == 'X' || op == 0x8d || op == 'V' || op == 'U' || op == 'T' || op == 'S';
}
bool is_memo_put(uint8_t op) { return op == 'q' || op == 'r' || op == 'p' || op == 0x94; }
bool is_memo_get(uint8_t op) { return op == 'h' || op == 'j' || op == 'g'; }
bool is_call(uint8_t op) { return op == 'R' || op == 0x81 || op == 0x92 || op == 'o'; }

std::string unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front())
    return s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Info:
      return "info";
    case Severity::Low:
      return "low";
    case Severity::Medium:
      return "medium";
    case Severity::High:
      return "high";
    case Severity::Critical:
      return "critical";
  }
  return "?";
}

Severity classify_import(const std::string& module, const std::string& name) {
  std::string mod = module == "__builtin__" ? "builtins" : module;
  std::string full = mod + "." + name;
  if (critical_names().count(full) || critical_modules().count(top_package(mod))) return Severity::Critical;
  if (mod == "builtins") return safe_builtins().count(name) ? Severity::Info : Severity::High;
  if (safe_names().count(full)) return Severity::Info;
  if (mod == "__torch__" || mod.rfind("__torch__.", 0) == 0) return Severity::Info;  // TorchScript classes
  if (mod == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0) return Severity::Info;
  if (mod.rfind("torch.nn.modules.", 0) == 0) return Severity::Low;  // a whole pickled nn.Module
  return Severity::High;
}

PickleWalk walk_pickle(std::string_view b, size_t max_opcodes) {
  PickleWalk w;
  std::map<uint64_t, std::string> memo;  // memo index -> string it holds
  uint64_t memo_next = 0;
  // The last two stack-affecting opcodes, and the string each pushed (if any).
  struct Recent {
    uint8_t op = 0;
    std::optional<std::string> str;
  };
  std::vector<Recent> recent;
  size_t pos = 0;
  size_t pending_import = SIZE_MAX;  // index of the last import, to mark it called
  auto fail = [&](std::string why) {
    w.error = why + " at byte " + std::to_string(pos);
    return w;
  };
  auto need = [&](size_t n) { return pos <= b.size() && n <= b.size() - pos; };
  auto read_le = [&](size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | uint8_t(b[pos + i]);
    pos += n;
    return v;
  };
  auto read_line = [&](std::string& out) {
    size_t nl = b.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    out = std::string(b.substr(pos, nl - pos));
    pos = nl + 1;
    return true;
  };
  while (pos < b.size()) {
    if (w.opcodes++ >= max_opcodes) return fail("too many opcodes");
    size_t at = pos;
    uint8_t op = uint8_t(b[pos++]);
    Arg a = arg_of(op);
    if (a == Arg::Unknown) {
      pos = at;
      return fail("unknown opcode 0x" + std::string(1, "0123456789abcdef"[op >> 4]) + "0123456789abcdef"[op & 15]);
    }
    std::optional<std::string> str;
    uint64_t num = 0;
    std::string line1, line2;
    switch (a) {
      case Arg::None:
        break;
      case Arg::U1:
      case Arg::U2:
      case Arg::U4:
      case Arg::U8: {
        size_t n = a == Arg::U1 ? 1 : a == Arg::U2 ? 2 : a == Arg::U4 ? 4 : 8;
        if (!need(n)) return fail("truncated argument");
        num = read_le(n);
        break;
      }
      case Arg::Line:
        if (!read_line(line1)) return fail("unterminated line argument");
        if (op == 'V') str = line1;
        if (op == 'S') str = unquote(line1);
        if (op == 'p' || op == 'g') num = uint64_t(std::strtoull(line1.c_str(), nullptr, 10));
        break;
      case Arg::TwoLines:
        if (!read_line(line1) || !read_line(line2)) return fail("unterminated GLOBAL/INST argument");
        break;
      case Arg::Len1:
      case Arg::Len4:
      case Arg::Len8: {
        size_t n = a == Arg::Len1 ? 1 : a == Arg::Len4 ? 4 : 8;
        if (!need(n)) return fail("truncated length");
        uint64_t len = read_le(n);
        if (!need(0) || len > b.size() - pos) return fail("string or bytes longer than the pickle");
        if (is_string_push(op)) str = std::string(b.substr(pos, size_t(len)));
        pos += size_t(len);
        break;
      }
      case Arg::Unknown:
        break;
    }
    if (op == 0x80) w.protocol = int(num);
    if (op == 'c' || op == 'i') {
      w.imports.push_back({line1, line2, op == 'c' ? "GLOBAL" : "INST", op == 'i'});
      pending_import = w.imports.size() - 1;
    } else if (op == 0x93) {
      size_t n = recent.size();
      if (n >= 2 && recent[n - 2].str && recent[n - 1].str)
        w.imports.push_back({*recent[n - 2].str, *recent[n - 1].str, "STACK_GLOBAL", false});
      else
        w.imports.push_back({"?", "?", "STACK_GLOBAL?", false});
      pending_import = w.imports.size() - 1;
    } else if (is_call(op) && pending_import != SIZE_MAX) {
      w.imports[pending_import].called = true;
    }
    if (is_memo_put(op)) {
      uint64_t idx = op == 0x94 ? memo_next++ : num;
      if (!recent.empty() && recent.back().str)
        memo[idx] = *recent.back().str;
      else
        memo.erase(idx);
      continue;  // does not change the stack
    }
    if (op == 0x95) continue;  // FRAME
    if (is_memo_get(op)) {
      auto it = memo.find(num);
      if (it != memo.end()) str = it->second;
    }
    recent.push_back({op, str});
    if (recent.size() > 2) recent.erase(recent.begin());
    if (op == '.') {
      w.complete = true;
      // Several pickles may follow each other (legacy torch.save); continue
      // only into another protocol-2+ pickle.
      if (pos < b.size() && uint8_t(b[pos]) == 0x80) {
        recent.clear();
        memo.clear();
        memo_next = 0;
        continue;
      }
      return w;
    }
  }
  return fail("no STOP opcode (truncated pickle)");
}

// ---- scanning ---------------------------------------------------------------------

namespace {

struct Scanner {
  const ScanOptions& opt;
  ScanReport& report;
  std::set<std::string> allowed;

  // Names and strings come from untrusted bytes: keep printable ASCII, escape
  // the rest as \xNN (valid UTF-8 for JSON, no terminal control sequences).
  static std::string printable(const std::string& in) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : in) {
      if (c >= 0x20 && c < 0x7f && c != '\\') {
        out += char(c);
      } else {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    return out;
  }

  void add(Severity s, const std::string& file, const std::string& entry, const std::string& kind,
           const std::string& detail) {
    report.findings.push_back({s, printable(file), printable(entry), kind, printable(detail)});
  }

  void scan_pickle(std::string_view bytes, const std::string& file, const std::string& entry) {
    report.pickles_scanned++;
    PickleWalk w = walk_pickle(bytes);
    if (!w.error.empty())
      add(w.opcodes <= 1 ? Severity::Medium : Severity::High, file, entry, "malformed_pickle",
          "pickle walk stopped: " + w.error + " (pickle.load would fail or behave unexpectedly)");
    std::map<std::string, std::pair<PickleImport, int>> seen;
    for (const auto& im : w.imports) {
      std::string key = im.module + "." + im.name + "|" + im.opcode;
      auto& slot = seen[key];
      if (slot.second == 0) slot.first = im;
      slot.first.called = slot.first.called || im.called;
      slot.second++;
    }
    for (const auto& [key, v] : seen) {
      const PickleImport& im = v.first;
      // Protocols 0-2 spell Python 3's builtins "__builtin__".
      std::string full = (im.module == "__builtin__" ? std::string("builtins") : im.module) + "." + im.name;
      if (im.opcode == "STACK_GLOBAL?") {
        add(Severity::High, file, entry, "unresolved_import",
            "STACK_GLOBAL whose module and name are computed, not literal strings (obfuscated import)");
        continue;
      }
      Severity s = classify_import(im.module, im.name);
      if (s > Severity::Info && s < Severity::Critical && user_allowed(full, im.module, opt.allow_)) s = Severity::Info;
      if (s == Severity::Info) {
        allowed.insert(printable(full));
        continue;
      }
      std::string detail = full + " via " + im.opcode + (im.called ? " (called)" : "") +
                           (v.second > 1 ? ", " + std::to_string(v.second) + " times" : "");
      if (s == Severity::Critical)
        detail += ": loading this file runs it (code execution / system access)";
      else if (s == Severity::High)
        detail += ": import outside the allow-list; loading runs that module's code";
      else
        detail += ": a pickled Python class (loading needs and runs its code)";
      add(s, file, entry, "import", detail);
    }
  }

  static bool bad_name(const std::string& n) {
    if (n.empty() || n[0] == '/' || n.find('\\') != std::string::npos || n.find('\0') != std::string::npos) return true;
    if (n.size() >= 2 && n[1] == ':') return true;
    fs::path p(n);
    for (const auto& part : p)
      if (part == "..") return true;
    return false;
  }

  static bool expected_torch_entry(const std::string& rel) {
    static const std::set<std::string> exact = {"data.pkl",      "constants.pkl",   "version",
                                                ".data/version", "byteorder",       ".data/serialization_id",
                                                "bytecode.pkl",  "serialization_id"};
    if (exact.count(rel)) return true;
    for (const char* prefix : {"data/", "constants/", "code/", "extra/", ".data/"})
      if (rel.rfind(prefix, 0) == 0) return true;
    return false;
  }

  void scan_zip(const zip::ByteSource& src, const std::string& file) {
    std::vector<zip::Entry> entries;
    try {
      entries = zip::read_directory(src);
    } catch (const Error& e) {
      add(Severity::High, file, "", "malformed_archive", e.what());
      return;
    }
    std::set<std::string> names;
    std::string root;
    uint64_t total = 0;
    for (const auto& e : entries) {
      if (bad_name(e.name))
        add(Severity::Critical, file, e.name, "path_traversal", "entry name escapes the archive root");
      if (!names.insert(e.name).second) add(Severity::High, file, e.name, "duplicate_entry", "the name appears twice");
      if (e.local_name != e.name)
        add(Severity::High, file, e.name, "name_mismatch", "local header names it \"" + e.local_name + "\"");
      total += e.uncompressed;
      if (e.uncompressed > (uint64_t{1} << 20) &&
          double(e.uncompressed) > opt.max_ratio_ * double(std::max<uint64_t>(e.compressed, 1)))
        add(Severity::High, file, e.name, "zip_bomb",
            "compression ratio " + std::to_string(e.uncompressed / std::max<uint64_t>(e.compressed, 1)) + ":1");
      if (e.flags & 1) add(Severity::Medium, file, e.name, "encrypted_entry", "encrypted entry cannot be scanned");
      std::string first = e.name.substr(0, e.name.find('/'));
      if (root.empty()) root = first;
      std::string rel = e.name.find('/') == std::string::npos ? e.name : e.name.substr(e.name.find('/') + 1);
      if (first != root || e.name.find('/') == std::string::npos) {
        add(Severity::Medium, file, e.name, "unexpected_file", "entry outside the archive's single root folder");
      } else if (!expected_torch_entry(rel)) {
        add(Severity::Low, file, e.name, "unexpected_file", "not part of a PyTorch/TorchScript archive layout");
      }
      static const std::vector<std::string> exec_ext = {".so", ".dll", ".dylib", ".exe", ".sh", ".bat", ".pyc", ".whl"};
      for (const auto& x : exec_ext)
        if (ends_with(e.name, x))
          add(Severity::High, file, e.name, "executable_file", "native code or script inside a model archive");
    }
    if (total > opt.max_total_bytes_)
      add(Severity::High, file, "", "zip_bomb", "declared uncompressed size " + std::to_string(total) + " bytes");
    // Entries whose data overlap share bytes: a known trick for zip bombs and parser confusion.
    std::vector<const zip::Entry*> by_off;
    for (const auto& e : entries) by_off.push_back(&e);
    std::sort(by_off.begin(), by_off.end(), [](auto* a, auto* b) { return a->local_offset < b->local_offset; });
    for (size_t i = 1; i < by_off.size(); ++i)
      if (by_off[i - 1]->data_offset + by_off[i - 1]->compressed > by_off[i]->local_offset)
        add(Severity::High, file, by_off[i]->name, "overlapping_entries", "data overlaps " + by_off[i - 1]->name);

    for (const auto& e : entries) {
      bool pickle_name = ends_with(e.name, ".pkl") || ends_with(e.name, ".debug_pkl");
      if (!pickle_name) continue;
      if (e.uncompressed > opt.max_pickle_bytes_) {
        add(Severity::Medium, file, e.name, "unscanned_pickle", "pickle larger than the scan limit");
        continue;
      }
      try {
        std::string bytes = zip::read_entry(src, e, opt.max_pickle_bytes_);
        scan_pickle(bytes, file, e.name);
      } catch (const Error& err) {
        add(Severity::Medium, file, e.name, "unscanned_pickle", err.what());
      }
    }
  }

  void scan_blob(const zip::ByteSource& src, const std::string& file, bool named_like_model) {
    report.files_scanned++;
    std::string head = src.read(0, size_t(std::min<uint64_t>(src.size(), 4)));
    if (zip::looks_like_zip(head)) {
      scan_zip(src, file);
      return;
    }
    bool pickle_magic = !head.empty() && uint8_t(head[0]) == 0x80;
    if (!pickle_magic && !named_like_model) return;
    if (src.size() > opt.max_pickle_bytes_) {
      add(Severity::Medium, file, "", "unscanned_pickle", "raw file larger than the scan limit");
      return;
    }
    std::string bytes = src.read(0, size_t(src.size()));
    if (!pickle_magic) {
      // Protocol 0/1 pickles have no magic: call it a pickle when the walk
      // reaches STOP or finds an import (a pickle that breaks after its
      // REDUCE still ran it).
      PickleWalk probe = walk_pickle(bytes);
      if (!probe.complete && probe.imports.empty()) {
        add(Severity::Info, file, "", "not_scanned", "neither a zip archive nor a pickle");
        return;
      }
    }
    add(Severity::Medium, file, "", "raw_pickle",
        "raw pickle file (not a zip archive): unpickling runs whatever it imports; prefer TorchScript or safetensors");
    scan_pickle(bytes, file, "");
  }
};

bool model_extension(const fs::path& p) {
  static const std::set<std::string> ext = {".pt",   ".pth",    ".pkl",   ".pickle", ".bin",
                                            ".ckpt", ".joblib", ".model", ".mar"};
  return ext.count(p.extension().string()) > 0;
}

void finish(Scanner& s) {
  s.report.allowed_imports.assign(s.allowed.begin(), s.allowed.end());
  std::stable_sort(s.report.findings.begin(), s.report.findings.end(),
                   [](const ScanFinding& a, const ScanFinding& b) { return a.severity > b.severity; });
}

}  // namespace

nlohmann::json ScanFinding::to_json() const {
  return {{"severity", severity_name(severity)}, {"file", file}, {"entry", entry}, {"kind", kind}, {"detail", detail}};
}

Severity ScanReport::worst() const {
  Severity w = Severity::Info;
  for (const auto& f : findings) w = std::max(w, f.severity);
  return w;
}

nlohmann::json ScanReport::to_json() const {
  nlohmann::json f = nlohmann::json::array();
  for (const auto& x : findings) f.push_back(x.to_json());
  return {{"clean", clean()},
          {"worst", severity_name(worst())},
          {"files_scanned", files_scanned},
          {"pickles_scanned", pickles_scanned},
          {"findings", f},
          {"allowed_imports", allowed_imports}};
}

ScanReport scan_bytes(std::string_view bytes, const std::string& name, const ScanOptions& options) {
  ScanReport r;
  Scanner s{options, r, {}};
  zip::MemorySource src(bytes);
  s.scan_blob(src, name, true);
  finish(s);
  return r;
}

ScanReport scan_model(const std::string& path, const ScanOptions& options) {
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  AEGIS_CHECK(!ec && fs::exists(st), NotFound, "not found: " << path);
  ScanReport r;
  Scanner s{options, r, {}};
  auto scan_file = [&](const fs::path& p, bool explicit_file) {
    zip::FileSource src(p.string());
    s.scan_blob(src, p.string(), explicit_file || model_extension(p));
  };
  if (fs::is_symlink(st)) {
    s.add(Severity::Medium, path, "", "symlink", "path is a symlink; not followed");
  } else if (fs::is_directory(st)) {
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      auto est = it->symlink_status();
      if (fs::is_symlink(est))
        s.add(Severity::Medium, it->path().string(), "", "symlink", "symlink inside the model; not followed");
      else if (fs::is_regular_file(est))
        scan_file(it->path(), false);
    }
    AEGIS_CHECK(!ec, Io, "cannot list " << path << ": " << ec.message());
  } else {
    AEGIS_CHECK(fs::is_regular_file(st), InvalidArgument, "not a file or directory: " << path);
    scan_file(path, true);
  }
  finish(s);
  return r;
}

}  // namespace aegis
