// End-to-end audits of a tiny closed-form model on synthetic images:
// report.json against its schema, severities against declared thresholds,
// resume after an interruption, the HTML report (self-contained, rendered by
// headless Chromium), diff, and the CLI.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "aegis/audit/audit.h"
#include "aegis/audit/diff.h"
#include "aegis/audit/report_html.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/core/json_schema.h"
#include "aegis/core/sha256.h"
#include "support/browser.h"
#include "support/test_support.h"

namespace aegis {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kClasses = 4;

/// A linear model that reads the bars of make_bar_images: the logit of class c
/// is the mean brightness of c's two rows. Correct on clean bars, easy to
/// attack at large eps.
std::shared_ptr<ScriptClassifier> bar_reader(double gain = 1.0) {
  torch::Tensor w = torch::zeros({kClasses, 1, 28, 28});
  for (int64_t c = 0; c < kClasses; ++c) w[c][0].narrow(0, 2 + c * (24 / kClasses), 2).fill_(gain / 56.0);
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.BarReader"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("weight", w.flatten(1), false);
  m.register_parameter("bias", torch::zeros({kClasses}), false);
  m.define(R"(
    def forward(self, x):
        return torch.linear(x.flatten(1), self.weight, self.bias)
  )");
  ModelMeta meta;
  meta.architecture = "bar-reader";
  meta.input_shape = {1, 28, 28};
  meta.num_classes = kClasses;
  meta.class_names = {"top", "upper", "lower", "bottom"};
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

const char* kTinySuite = R"(
[audit]
name = "tiny"
samples = 24
batch_size = 24

[[check]]
id = "evasion-linf"
check = "evasion-curve"
[check.params]
eps = [0.05, 0.2, 0.4]
examples = 3
attack_params = { steps = 5 }

[[check]]
id = "evasion-black-box"
check = "evasion-curve"
[check.params]
threat = "black-box"
eps = [0.2]

[[check]]
id = "per-class"
check = "per-class-robustness"
[check.params]
eps = 0.2
attack_params = { steps = 5 }

[[check]]
id = "masking"
check = "gradient-masking"
[check.params]
eps = 0.2
steps = 5

[[check]]
id = "minimal"
check = "minimal-perturbation"
[check.params]
grid_points = 4
steps = 5

[[check]]
id = "calibration"
check = "calibration"
[check.params]
eps = 0.2
attack_params = { steps = 5 }
)";

struct Fixture {
  testing::TempDir dir;
  std::shared_ptr<ScriptClassifier> model = bar_reader();
  Dataset data = testing::make_bar_images(40, kClasses, 5);
  std::string model_path = dir.file("model.pt");
  Fixture() { model->save(model_path); }
  AuditOptions options(const std::string& out) const {
    return AuditOptions(dir.file(out)).model_path(model_path).seed(11).reproduce("aegis audit (test)");
  }
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(Audit, ReportValidatesAgainstItsSchema) {
  Fixture f;
  AuditReport r = run_audit(*f.model, f.data, parse_suite(kTinySuite), f.options("a"));
  nlohmann::json schema = read_json(audit_report_schema_path());
  nlohmann::json written = read_json(r.json_path);
  EXPECT_EQ(written, r.report);
  auto errors = validate_json_schema(written, schema);
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_EQ(written["model"]["sha256"], sha256_file(f.model_path));
  EXPECT_EQ(written["data"]["fingerprint"], f.data.fingerprint());
  EXPECT_EQ(written["aegis_version"], AEGIS_VERSION);
  EXPECT_EQ(written["seed"], 11);
  EXPECT_EQ(written["data"]["samples_audited"], 24);
  EXPECT_EQ(written["checks"].size(), 6u);
  // The schema is not vacuous: breaking the report breaks validation.
  nlohmann::json broken = written;
  broken["findings"][0]["severity"] = "severe";
  broken["model"].erase("sha256");
  EXPECT_EQ(validate_json_schema(broken, schema).size(), 2u);
  // A black-box check runs only if the registry has a black-box attack;
  // otherwise it says so.
  for (const auto& c : written["checks"])
    if (c["id"] == "evasion-black-box" && c["status"] == "skipped") {
      EXPECT_NE(c["note"].get<std::string>().find("no black-box attack"), std::string::npos);
    }
}

TEST(Audit, CurvesAreMonotoneAndCleanAccuracyIsExact) {
  Fixture f;
  AuditReport r = run_audit(*f.model, f.data, parse_suite(kTinySuite), f.options("a").write_html(false));
  const auto& curve = r.report["checks"][0]["metrics"]["curve"];
  EXPECT_EQ(r.report["checks"][0]["metrics"]["clean_accuracy"],
            1.0);  // the bar reader is exact on clean bars
  ASSERT_EQ(curve.size(), 3u);
  EXPECT_LT(curve[2]["robust_accuracy"].get<double>(),
            0.5);  // eps 0.4 erases a bar
  // Gradient masking: a linear model has honest gradients, so every sanity
  // check passes.
  for (const auto& c : r.report["checks"])
    if (c["id"] == "masking") {
      EXPECT_EQ(c["metrics"]["failed"], 0) << c["metrics"]["tests"].dump();
    }
}

TEST(Audit, SeveritiesFollowDeclaredThresholds) {
  Fixture f;
  AuditReport r = run_audit(*f.model, f.data, parse_suite(kTinySuite), f.options("a").write_html(false));
  ASSERT_FALSE(r.report["findings"].empty());
  int previous = 5;
  for (const auto& j : r.report["findings"]) {
    Finding fd = Finding::from_json(j);
    EXPECT_EQ(fd.severity, fd.thresholds.grade(fd.value)) << fd.id;
    EXPECT_LE(int(fd.severity), previous) << "findings are sorted by severity";
    previous = int(fd.severity);
  }
  // Moving the declared thresholds moves the severities: the same measured
  // drop graded against limits above and below it.
  double drop = -1;
  for (const auto& j : r.report["findings"])
    if (j["id"] == "evasion-linf/robust-accuracy-drop") drop = j["value"].get<double>();
  ASSERT_GT(drop, 0.0);
  auto with_limits = [&](const std::string& limits) {
    std::string suite = std::string(kTinySuite) + "";
    size_t at = suite.find("[[check]]\nid = \"evasion-black-box\"");
    suite.insert(at, "[check.thresholds.robust-accuracy-drop]\n" + limits + "\n\n");
    AuditReport again = run_audit(*f.model, f.data, parse_suite(suite), f.options("b").write_html(false));
    for (const auto& j : again.report["findings"])
      if (j["id"] == "evasion-linf/robust-accuracy-drop") return parse_severity(j["severity"].get<std::string>());
    return Severity::Info;
  };
  EXPECT_EQ(
      with_limits(fmt::format("critical = {}\nhigh = {}\nmedium = {}\nlow = {}", drop, drop / 2, drop / 3, drop / 4)),
      Severity::Critical);
  EXPECT_EQ(
      with_limits(fmt::format("critical = {}\nhigh = {}\nmedium = {}\nlow = {}", drop + 1, drop + 0.5, drop, drop / 2)),
      Severity::Medium);
  EXPECT_EQ(with_limits(fmt::format("critical = {}\nhigh = {}\nmedium = {}\nlow = {}", drop + 3, drop + 2, drop + 1,
                                    drop + 0.5)),
            Severity::Info);
}

TEST(Audit, ResumeAfterInterruptionGivesTheSameReport) {
  Fixture f;
  Suite suite = parse_suite(kTinySuite);
  AuditReport whole = run_audit(*f.model, f.data, suite, f.options("whole"));
  int done = 0;
  AuditOptions interrupted = f.options("resumed");
  interrupted.after_check([&](const std::string&) {
    if (++done == 3) throw std::runtime_error("interrupted");
  });
  EXPECT_THROW(run_audit(*f.model, f.data, suite, interrupted), std::runtime_error);
  EXPECT_FALSE(fs::exists(f.dir.file("resumed/report.json")));
  EXPECT_EQ(std::distance(fs::directory_iterator(f.dir.file("resumed/checks")), fs::directory_iterator()), 3);
  AuditReport resumed = run_audit(*f.model, f.data, suite, f.options("resumed").resume(true));
  EXPECT_EQ(resumed.resumed_checks, 3);
  EXPECT_EQ(resumed.report["run"]["resumed_checks"].size(), 3u);
  EXPECT_EQ(strip_timings(resumed.report), strip_timings(whole.report));
  EXPECT_NE(strip_timings(whole.report),
            whole.report);  // there were timings to strip
  // A saved check whose configuration differs (another seed) is run again, not
  // reused.
  AuditReport other = run_audit(*f.model, f.data, suite, f.options("resumed").resume(true).seed(12));
  EXPECT_EQ(other.resumed_checks, 0);
}

TEST(Audit, RobustAccuracyCheckIsTheEnsembleAndAtOrBelowPgd) {
  Fixture f;
  const char* suite = R"(
[audit]
name = "aa"
samples = 24
batch_size = 24

[[check]]
id = "pgd"
check = "evasion-curve"
[check.params]
eps = [0.4]
attack_params = { steps = 5 }

[[check]]
id = "aa"
check = "robust-accuracy"
[check.params]
eps = 0.4
budget = "quick"
sanity_samples = 24
)";
  AuditReport r = run_audit(*f.model, f.data, parse_suite(suite), f.options("aa").write_html(false));
  const auto& pgd = r.report["checks"][0]["metrics"];
  const auto& aa = r.report["checks"][1]["metrics"];
  ASSERT_EQ(r.report["checks"][1]["status"], "ok");
  EXPECT_EQ(aa["protocol"], "autoattack-quick");
  EXPECT_EQ(aa["clean_accuracy"], 1.0);
  EXPECT_LE(aa["robust_accuracy"].get<double>(), pgd["robust_accuracy"].get<double>());
  EXPECT_LT(aa["robust_accuracy"].get<double>(), 1.0);  // eps 0.4 erases bars
  ASSERT_GE(aa["stages"].size(), 2u);
  EXPECT_EQ(aa["stages"][0]["attack"], "apgd-ce");
  // Each stage attacks only what the earlier ones left standing.
  for (size_t i = 1; i < aa["stages"].size(); ++i)
    EXPECT_EQ(aa["stages"][i]["attacked"].get<int64_t>(),
              aa["stages"][i - 1]["attacked"].get<int64_t>() - aa["stages"][i - 1]["broken"].get<int64_t>());
  for (const auto& s : aa["sanity_checks"]) EXPECT_TRUE(s["passed"].get<bool>()) << s.dump();
  // The graded value is the relative drop, and the finding carries the ATLAS/OWASP ids.
  bool found = false;
  for (const auto& fd : r.report["findings"])
    if (fd["check"] == "aa" && fd["rule"] == "robust-accuracy-drop") {
      found = true;
      EXPECT_NEAR(fd["value"].get<double>(), 1.0 - aa["robust_accuracy"].get<double>(), 1e-6);
      EXPECT_EQ(fd["atlas"], "AML.T0043.000");
      EXPECT_EQ(fd["owasp"], "ML01");
    }
  EXPECT_TRUE(found) << r.report["findings"].dump();
  try {
    make_check("robust-accuracy", {{"budget", "huge"}});
    ADD_FAILURE() << "an unknown budget was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quick or standard"), std::string::npos) << e.what();
  }
}

TEST(Audit, HtmlIsSelfContainedAndSorted) {
  Fixture f;
  AuditReport r = run_audit(*f.model, f.data, parse_suite(kTinySuite), f.options("a"));
  std::ifstream in(r.html_path);
  std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src='http"), std::string::npos);
  size_t svg = 0, pos = 0;
  while ((pos = html.find("<svg", pos)) != std::string::npos) ++svg, ++pos;
  EXPECT_GE(svg,
            4u);  // curves, per-class bars, minimal-perturbation, reliability
  EXPECT_NE(html.find("src='data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_NE(html.find(r.report["verdict"]["summary"].get<std::string>().substr(0, 4)), std::string::npos);
  EXPECT_NE(html.find("aegis audit (test)"), std::string::npos);
  // Every img src is a data URI.
  pos = 0;
  while ((pos = html.find("src=", pos)) != std::string::npos) {
    EXPECT_EQ(html.compare(pos, 15, "src='data:image"), 0) << html.substr(pos, 40);
    ++pos;
  }
  // Findings appear in severity order.
  size_t last = 0;
  for (const auto& fd : r.report["findings"]) {
    size_t at = html.find("(" + fd["id"].get<std::string>() + ")");
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(at, last);
    last = at;
  }
  EXPECT_EQ(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

/// Pixels within `tol` of an RGB colour.
int64_t count_colour(const DecodedImage& img, int r, int g, int b, int tol = 12) {
  int64_t n = 0;
  for (size_t i = 0; i + 2 < img.pixels.size(); i += img.channels)
    if (std::abs(img.pixels[i] - r) <= tol && std::abs(img.pixels[i + 1] - g) <= tol &&
        std::abs(img.pixels[i + 2] - b) <= tol)
      ++n;
  return n;
}

TEST(Audit, HtmlRendersInHeadlessChromium) {
  std::string chromium = testing::find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup installs it)";
  Fixture f;
  AuditReport r = run_audit(*f.model, f.data, parse_suite(kTinySuite), f.options("a"));
  auto shot = [&](const std::string& html_path, const std::string& png) {
    std::string cmd = "timeout 120 " + chromium +
                      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                      "--disable-background-networking --disable-component-update "
                      "--disable-sync --hide-scrollbars "
                      "--user-data-dir=" +
                      f.dir.file("profile") + " --screenshot=" + png + " --window-size=1200,4000 file://" +
                      fs::absolute(html_path).string();
    auto res = testing::run_command(cmd);
    EXPECT_TRUE(fs::exists(png)) << res.err;
    return decode_image_file(png);
  };
  DecodedImage img = shot(r.html_path, f.dir.file("report.png"));
  ASSERT_GE(img.channels, 3);
  EXPECT_EQ(img.width, 1200);
  // The chart series colours (#1f77b4 blue, #ff7f0e orange) are drawn.
  EXPECT_GT(count_colour(img, 0x1f, 0x77, 0xb4), 500);
  EXPECT_GT(count_colour(img, 0xff, 0x7f, 0x0e), 200);
  // Control: the same page with the charts removed has none of the blue.
  std::ifstream in(r.html_path);
  std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t a; (a = html.find("<svg")) != std::string::npos;) html.erase(a, html.find("</svg>", a) + 6 - a);
  std::ofstream(f.dir.file("nocharts.html")) << html;
  DecodedImage plain = shot(f.dir.file("nocharts.html"), f.dir.file("plain.png"));
  EXPECT_LT(count_colour(plain, 0x1f, 0x77, 0xb4), 20);
}

TEST(AuditDiff, MarksImprovementsByDirection) {
  Fixture f;
  Suite suite = parse_suite(kTinySuite);
  AuditReport a = run_audit(*f.model, f.data, suite, f.options("a").write_html(false));
  nlohmann::json same = diff_reports(a.report, a.report);
  EXPECT_EQ(same["improved"], 0);
  EXPECT_EQ(same["regressed"], 0);
  for (const auto& m : same["metrics"]) EXPECT_EQ(m["change"], "unchanged");
  // Sharper logits (gain 3): the same decisions, other confidences; every
  // change is labelled by the metric's direction.
  auto strong = bar_reader(3.0);
  strong->save(f.dir.file("strong.pt"));
  AuditReport b =
      run_audit(*strong, f.data, suite, f.options("b").model_path(f.dir.file("strong.pt")).write_html(false));
  nlohmann::json d = diff_reports(a.report, b.report);
  for (const auto& m : d["metrics"]) {
    if (m["change"] == "unchanged" || !m["delta"].is_number()) continue;
    bool better = (m["delta"].get<double>() > 0) == m["higher_is_better"].get<bool>();
    EXPECT_EQ(m["change"], better ? "improved" : "regressed") << m.dump();
  }
  nlohmann::json broken = a.report;
  broken.erase("checks");
  EXPECT_THROW(diff_reports(broken, a.report), Error);
}

TEST(AuditCli, RunsFailsOnSeverityResumesAndDiffs) {
  Fixture f;
  save_npy(f.data.x, f.dir.file("x.npy"));
  save_npy(f.data.y, f.dir.file("y.npy"));
  std::ofstream(f.dir.file("tiny.toml")) << kTinySuite;
  std::string base = "audit --model " + f.model_path + " --data " + f.dir.file("x.npy") + " --labels " +
                     f.dir.file("y.npy") + " --suite " + f.dir.file("tiny.toml") + " --quiet --out ";
  auto r = testing::run_aegis(base + f.dir.file("cli") + " --fail-on info");
  EXPECT_EQ(r.exit_code, 3) << r.err;  // there is always a finding at or above info
  EXPECT_TRUE(fs::exists(f.dir.file("cli/report.json")));
  EXPECT_TRUE(fs::exists(f.dir.file("cli/report.html")));
  r = testing::run_aegis(base + f.dir.file("cli") + " --resume --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["resumed_checks"], 6);
  EXPECT_FALSE(j["top_findings"].empty());
  auto report = load_audit_report(f.dir.file("cli/report.json"));
  EXPECT_NE(report["reproduce"].get<std::string>().find("--suite"), std::string::npos);
  r = testing::run_aegis("audit diff " + f.dir.file("cli/report.json") + " " + f.dir.file("cli/report.json") +
                         " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["regressed"], 0);
  r = testing::run_aegis("audit diff " + f.dir.file("cli/report.json") + " " + f.dir.file("cli/report.json"));
  EXPECT_NE(r.out.find("0 metrics improved, 0 regressed"), std::string::npos) << r.out;
  std::ofstream(f.dir.file("bad.toml")) << "[[check]]\ncheck = \"nope\"\n";
  r = testing::run_aegis("audit --model " + f.model_path + " --data " + f.dir.file("x.npy") + " --labels " +
                         f.dir.file("y.npy") + " --suite " + f.dir.file("bad.toml") + " --out " + f.dir.file("bad"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown check 'nope'"), std::string::npos) << r.err;
}

TEST(ImageIo, PngRoundTripAndBase64) {
  testing::TempDir dir;
  torch::Tensor img = torch::linspace(0, 1, 12).view({1, 3, 4});
  std::string png = encode_png(img, 0, 1, 2);
  std::ofstream(dir.file("a.png"), std::ios::binary) << png;
  DecodedImage d = decode_image_file(dir.file("a.png"));
  EXPECT_EQ(d.width, 8);
  EXPECT_EQ(d.height, 6);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.pixels[0], 0);
  EXPECT_EQ(d.pixels[d.pixels.size() - 1], 255);
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode("M"), "TQ==");
  EXPECT_THROW(encode_png(torch::zeros({2, 4, 4})), Error);
}

}  // namespace
}  // namespace aegis
