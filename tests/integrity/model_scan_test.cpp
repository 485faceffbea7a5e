// Unsafe model file scanning: hand-made pickles with known imports, malicious
// files crafted by Python (raw pickles, torch archives, zip tricks), and clean
// files saved by PyTorch and by aegis.

#include "aegis/integrity/model_scan.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aegis/core/error.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace aegis;
using aegis::testing::TempDir;

namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int c : v) s += char(c);
  return s;
}

bool has_finding(const ScanReport& r, const std::string& kind, const std::string& detail_part,
                 Severity at_least = Severity::Low) {
  for (const auto& f : r.findings)
    if (f.kind == kind && f.detail.find(detail_part) != std::string::npos && f.severity >= at_least) return true;
  return false;
}

std::string dump(const ScanReport& r) { return r.to_json().dump(1); }

// Runs a Python snippet with Debian's python3 (with torch if `torch` is set).
void python(const std::string& code, const TempDir& dir) {
  std::ofstream(dir.file("make.py")) << code;
  auto r = aegis::testing::run_command("cd " + dir.path().string() + " && /usr/bin/python3 make.py");
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace

TEST(PickleWalk, ResolvesGlobalStackGlobalAndMemo) {
  // Protocol 0: GLOBAL "os\nsystem\n", then REDUCE.
  std::string p0 = "cos\nsystem\n(S'id'\ntR.";
  PickleWalk w0 = walk_pickle(p0);
  ASSERT_TRUE(w0.error.empty()) << w0.error;
  ASSERT_EQ(w0.imports.size(), 1u);
  EXPECT_EQ(w0.imports[0].module, "os");
  EXPECT_EQ(w0.imports[0].name, "system");
  EXPECT_EQ(w0.imports[0].opcode, "GLOBAL");
  EXPECT_TRUE(w0.imports[0].called);

  // Protocol 4: strings memoized, popped, fetched back with BINGET, then STACK_GLOBAL.
  std::string p4 = bytes({0x80, 4, 0x8c, 8}) + "builtins" + bytes({'q', 0, 0x8c, 4}) + "eval" +
                   bytes({'q', 1, '0', '0', 'h', 0, 'h', 1, 0x93, 'N', 0x85, 'R', '.'});
  PickleWalk w4 = walk_pickle(p4);
  ASSERT_TRUE(w4.error.empty()) << w4.error;
  EXPECT_EQ(w4.protocol, 4);
  ASSERT_EQ(w4.imports.size(), 1u);
  EXPECT_EQ(w4.imports[0].module, "builtins");
  EXPECT_EQ(w4.imports[0].name, "eval");
  EXPECT_EQ(w4.imports[0].opcode, "STACK_GLOBAL");
  EXPECT_TRUE(w4.imports[0].called);

  // STACK_GLOBAL over values that are not literal strings cannot be resolved.
  PickleWalk wu = walk_pickle(bytes({0x80, 4, 'N', 'N', 0x93, '.'}));
  ASSERT_EQ(wu.imports.size(), 1u);
  EXPECT_EQ(wu.imports[0].opcode, "STACK_GLOBAL?");
  EXPECT_TRUE(
      has_finding(scan_bytes(bytes({0x80, 4, 'N', 'N', 0x93, '.'}), "x.pkl"), "unresolved_import", "", Severity::High));
}

TEST(PickleWalk, MalformedInputStopsWithAReason) {
  EXPECT_NE(walk_pickle(bytes({0x80, 4, 0x8c, 50, 'a'})).error.find("longer than the pickle"), std::string::npos);
  EXPECT_NE(walk_pickle("cos\nsys").error.find("unterminated"), std::string::npos);
  EXPECT_NE(walk_pickle(bytes({0x80, 2, 0xff})).error.find("unknown opcode 0xff"), std::string::npos);
  EXPECT_NE(walk_pickle(bytes({0x80, 2, 'N'})).error.find("no STOP"), std::string::npos);
  EXPECT_TRUE(walk_pickle(bytes({0x80, 2, 'N', '.'})).complete);
}

TEST(ScanClassify, SeveritiesOfKnownImports) {
  EXPECT_EQ(classify_import("os", "system"), Severity::Critical);
  EXPECT_EQ(classify_import("posix", "system"), Severity::Critical);
  EXPECT_EQ(classify_import("subprocess", "Popen"), Severity::Critical);
  EXPECT_EQ(classify_import("builtins", "eval"), Severity::Critical);
  EXPECT_EQ(classify_import("__builtin__", "exec"), Severity::Critical);
  EXPECT_EQ(classify_import("socket", "socket"), Severity::Critical);
  EXPECT_EQ(classify_import("torch._utils", "_rebuild_tensor_v2"), Severity::Info);
  EXPECT_EQ(classify_import("torch", "FloatStorage"), Severity::Info);
  EXPECT_EQ(classify_import("collections", "OrderedDict"), Severity::Info);
  EXPECT_EQ(classify_import("__torch__.torch.nn.modules.linear", "Linear"), Severity::Info);
  EXPECT_EQ(classify_import("builtins", "set"), Severity::Info);
  EXPECT_EQ(classify_import("torch.nn.modules.linear", "Linear"), Severity::Low);
  EXPECT_EQ(classify_import("mypackage.evil", "thing"), Severity::High);
  EXPECT_EQ(classify_import("builtins", "type"), Severity::High);
}

TEST(ScanFiles, MaliciousPicklesAndArchivesAreFlagged) {
  TempDir dir;
  python(R"(import os, pickle, zipfile
class Sys:
    def __reduce__(self): return (os.system, ('echo pwned',))
class Ev:
    def __reduce__(self): return (eval, ('1+1',))
open('sys_p4.pkl', 'wb').write(pickle.dumps(Sys(), protocol=4))
open('sys_p0.pkl', 'wb').write(pickle.dumps(Sys(), protocol=0))
open('eval_p2.pkl', 'wb').write(pickle.dumps(Ev(), protocol=2))
# a torch-like archive whose data.pkl carries the payload
with zipfile.ZipFile('evil.pt', 'w') as z:
    z.writestr('evil/data.pkl', pickle.dumps({'w': 1, 'x': Sys()}, protocol=2))
    z.writestr('evil/version', '3\n')
with zipfile.ZipFile('traversal.pt', 'w') as z:
    z.writestr('m/data.pkl', pickle.dumps({'w': 1}, protocol=2))
    z.writestr('../../etc/cron.d/x', 'boom')
with zipfile.ZipFile('bomb.pt', 'w', compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr('m/data.pkl', pickle.dumps({'w': 1}, protocol=2))
    z.writestr('m/data/0', b'\0' * (16 << 20))
with zipfile.ZipFile('extra.pt', 'w') as z:
    z.writestr('m/data.pkl', pickle.dumps({'w': 1}, protocol=2))
    z.writestr('m/payload.so', b'\x7fELF')
    z.writestr('m/notes.txt', 'hello')
)",
         dir);
  ScanReport p4 = scan_model(dir.file("sys_p4.pkl"));
  EXPECT_TRUE(has_finding(p4, "import", "posix.system via STACK_GLOBAL (called)", Severity::Critical)) << dump(p4);
  EXPECT_TRUE(has_finding(p4, "raw_pickle", "raw pickle", Severity::Medium)) << dump(p4);
  EXPECT_FALSE(p4.clean());
  EXPECT_TRUE(has_finding(scan_model(dir.file("sys_p0.pkl")), "import", "posix.system via GLOBAL", Severity::Critical));
  EXPECT_TRUE(has_finding(scan_model(dir.file("eval_p2.pkl")), "import", "builtins.eval", Severity::Critical));

  ScanReport evil = scan_model(dir.file("evil.pt"));
  EXPECT_EQ(evil.worst(), Severity::Critical) << dump(evil);
  EXPECT_TRUE(has_finding(evil, "import", "posix.system")) << dump(evil);
  EXPECT_EQ(evil.pickles_scanned, 1u);

  ScanReport trav = scan_model(dir.file("traversal.pt"));
  EXPECT_TRUE(has_finding(trav, "path_traversal", "escapes", Severity::Critical)) << dump(trav);

  ScanReport bomb = scan_model(dir.file("bomb.pt"));
  EXPECT_TRUE(has_finding(bomb, "zip_bomb", "compression ratio", Severity::High)) << dump(bomb);

  ScanReport extra = scan_model(dir.file("extra.pt"));
  EXPECT_TRUE(has_finding(extra, "executable_file", "native code", Severity::High)) << dump(extra);
  EXPECT_TRUE(has_finding(extra, "unexpected_file", "layout", Severity::Low)) << dump(extra);

  // A directory scan finds every one of them.
  ScanReport all = scan_model(dir.path().string());
  EXPECT_GE(all.files_scanned, 7u);
  EXPECT_EQ(all.worst(), Severity::Critical);
  // The allow-list extension does not silence critical imports.
  ScanReport allowed = scan_model(dir.file("sys_p4.pkl"), ScanOptions().allow({"posix.*"}));
  EXPECT_TRUE(has_finding(allowed, "import", "posix.system", Severity::Critical));
}

TEST(ScanFiles, ModelsSavedByPyTorchAndAegisAreClean) {
  TempDir dir;
  auto model = aegis::testing::make_linear(torch::randn({3, 4}), torch::randn({3}));
  model->save(dir.file("aegis.pt"));
  ScanReport ours = scan_model(dir.file("aegis.pt"));
  EXPECT_TRUE(ours.clean()) << dump(ours);
  EXPECT_TRUE(ours.findings.empty()) << dump(ours);
  EXPECT_GE(ours.pickles_scanned, 2u);  // data.pkl, constants.pkl (+ debug pickles)

  if (aegis::testing::python_with_torch().empty()) GTEST_SKIP() << "python3 with torch is absent";
  python(R"(import torch
m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 26 * 26, 10))
torch.save(m.state_dict(), 'state_dict.pt')
torch.jit.save(torch.jit.script(m), 'scripted.pt')
torch.save(m, 'whole_module.pt')
torch.save({'w': torch.randn(3)}, 'legacy.pt', _use_new_zipfile_serialization=False)
)",
         dir);
  for (const char* f : {"state_dict.pt", "scripted.pt"}) {
    ScanReport r = scan_model(dir.file(f));
    EXPECT_TRUE(r.findings.empty()) << f << ": " << dump(r);
    EXPECT_GE(r.pickles_scanned, 1u) << f;
    EXPECT_FALSE(r.allowed_imports.empty()) << f;
  }
  // A whole pickled nn.Module imports its classes: reported, Low, still clean.
  ScanReport whole = scan_model(dir.file("whole_module.pt"));
  EXPECT_TRUE(whole.clean()) << dump(whole);
  EXPECT_TRUE(has_finding(whole, "import", "torch.nn.modules.conv.Conv2d", Severity::Low)) << dump(whole);
  // The legacy (pre-1.6) format is a raw pickle sequence: flagged as such, no bad import.
  ScanReport legacy = scan_model(dir.file("legacy.pt"));
  EXPECT_TRUE(has_finding(legacy, "raw_pickle", "raw pickle", Severity::Medium)) << dump(legacy);
  EXPECT_FALSE(has_finding(legacy, "import", "", Severity::High)) << dump(legacy);
}

TEST(ScanFiles, MalformedArchivesAndMissingPaths) {
  ScanReport r = scan_bytes(std::string("PK\x03\x04garbage", 11), "broken.pt");
  EXPECT_TRUE(has_finding(r, "malformed_archive", "end-of-central-directory", Severity::High)) << dump(r);
  EXPECT_THROW(scan_model("/nonexistent/model.pt"), Error);
  // Names from the file are escaped: the report is valid UTF-8 JSON whatever
  // the bytes (found by the fuzzer: a GLOBAL naming byte 0xb3).
  ScanReport odd = scan_bytes(std::string("c\xb3os\nsys\x1b[2Jtem\n.", 17), "odd.pkl");
  EXPECT_NO_THROW(odd.to_json().dump());
  EXPECT_TRUE(has_finding(odd, "import", "\\xb3os.sys\\x1b[2Jtem", Severity::High)) << dump(odd);
  ScanReport text = scan_bytes("just some text", "notes.txt");
  EXPECT_TRUE(text.clean());
}

TEST(ScanCli, ExitCodesAndJson) {
  TempDir dir;
  auto model = aegis::testing::make_linear(torch::randn({2, 3}), torch::randn({2}));
  model->save(dir.file("m.pt"));
  auto ok = aegis::testing::run_aegis("scan " + dir.file("m.pt"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("clean"), std::string::npos);
  std::ofstream(dir.file("evil.pkl"), std::ios::binary) << "cposix\nsystem\n(S'id'\ntR.";
  auto bad = aegis::testing::run_aegis("scan " + dir.file("evil.pkl") + " --json");
  EXPECT_EQ(bad.exit_code, 1);
  auto j = nlohmann::json::parse(bad.out);
  EXPECT_EQ(j["worst"], "critical");
  auto usage = aegis::testing::run_aegis("scan " + dir.file("m.pt") + " --fail-on severe");
  EXPECT_EQ(usage.exit_code, 2);
}
