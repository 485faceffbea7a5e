// The gateway's review page in a real browser: headless Chromium driven over
// the DevTools protocol (its --remote-debugging-pipe, so no extra packages)
// loads GET /v1/review, logs in with an admin key, shows the flagged request
// with its input and attribution map drawn, and a click on "Confirm" puts the
// decision in the audit log. An attacker-chosen request id is shown as text,
// never run as HTML.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "aegis/serve/review_page.h"
#include "gateway_harness.h"
#include "support/browser.h"

namespace aegis::serve {
namespace {

namespace fs = std::filesystem;
using namespace testing_gateway;

/// Chromium over --remote-debugging-pipe: commands go to its fd 3 and
/// answers come from its fd 4, each a JSON message ended by a NUL byte.
class DevTools {
 public:
  DevTools(const std::string& chromium, const std::string& profile) {
    int to_browser[2], from_browser[2];
    if (pipe(to_browser) != 0 || pipe(from_browser) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      // fds 3 and 4 may be taken by the pipes themselves: move them clear first.
      int in = fcntl(to_browser[0], F_DUPFD, 10), out = fcntl(from_browser[1], F_DUPFD, 10);
      dup2(in, 3);
      dup2(out, 4);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      const std::string user_data = "--user-data-dir=" + profile;
      execl(chromium.c_str(), chromium.c_str(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-pipe", user_data.c_str(), "about:blank", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_browser[0]);
    close(from_browser[1]);
    write_fd_ = to_browser[1];
    read_fd_ = from_browser[0];
  }
  ~DevTools() {
    if (write_fd_ >= 0) close(write_fd_);
    if (read_fd_ >= 0) close(read_fd_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0 && read_fd_ >= 0; }

  /// Sends a command (to a page when `session` is set) and returns its
  /// result; throws on a protocol error or after 60 s without an answer.
  json call(const std::string& method, const json& params, const std::string& session = "") {
    json msg = {{"id", ++id_}, {"method", method}, {"params", params}};
    if (!session.empty()) msg["sessionId"] = session;
    const std::string text = msg.dump() + std::string(1, '\0');
    if (::write(write_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error("cannot write to chromium");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      size_t nul;
      while ((nul = buffer_.find('\0')) != std::string::npos) {
        json answer = json::parse(buffer_.substr(0, nul));
        buffer_.erase(0, nul + 1);
        if (answer.value("id", int64_t{-1}) != id_) continue;  // events and other answers
        if (answer.contains("error")) throw std::runtime_error(method + ": " + answer["error"].dump());
        return answer["result"];
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) throw std::runtime_error(method + ": no answer from chromium");
      pollfd p{read_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[65536];
      const ssize_t n = ::read(read_fd_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error(method + ": chromium closed the pipe");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  /// Evaluates JavaScript in the page (awaiting a promise) and returns its value.
  json eval(const std::string& session, const std::string& expression) {
    json r = call("Runtime.evaluate", {{"expression", expression}, {"awaitPromise", true}, {"returnByValue", true}},
                  session);
    if (r.contains("exceptionDetails")) throw std::runtime_error("page script failed: " + r["exceptionDetails"].dump());
    return r["result"].value("value", json());
  }

 private:
  pid_t pid_ = -1;
  int write_fd_ = -1, read_fd_ = -1;
  int64_t id_ = 0;
  std::string buffer_;
};

/// A promise that resolves to `value` once `condition` holds (10 s at most).
std::string when(const std::string& condition, const std::string& value) {
  return "new Promise((done) => { const t0 = Date.now(); (function poll() { if (" + condition + ") done(" + value +
         "); else if (Date.now() - t0 > 10000) done('timed out waiting for: ' + " + json(condition).dump() +
         "); else setTimeout(poll, 25); })(); })";
}

/// A 1x4x4 image model: logits = W flatten(x) + b, 3 classes.
std::shared_ptr<ScriptClassifier> image_model() {
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.TinyImage"));
  m.register_attribute("training", c10::BoolType::get(), false);
  torch::Tensor w = torch::zeros({3, 16});
  w[0].slice(0, 0, 8).fill_(1.0);   // class 0: top half bright
  w[1].slice(0, 8, 16).fill_(1.0);  // class 1: bottom half bright
  w[2].fill_(0.3);
  m.register_parameter("weight", w, false);
  m.register_parameter("bias", torch::zeros({3}), false);
  m.define(R"(
    def forward(self, x):
        return torch.linear(x.flatten(1), self.weight, self.bias)
  )");
  ModelMeta meta;
  meta.architecture = "tiny-image";
  meta.input_shape = {1, 4, 4};
  meta.num_classes = 3;
  meta.class_names = {"top", "bottom", "flat"};
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

TEST(ReviewPage, IsStaticPublicAndLocksItselfDown) {
  Harness h;
  h.start(h.config());
  auto page = h.client->Get("/v1/review", {{"Accept", "text/html,application/xhtml+xml"}});
  ASSERT_EQ(page->status, 200);
  EXPECT_EQ(page->body, review_page_html());
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
  auto script = h.client->Get("/v1/review/app.js");
  ASSERT_EQ(script->status, 200);
  EXPECT_NE(script->get_header_value("Content-Type").find("javascript"), std::string::npos);
  // The data behind it needs an admin key, HTML or not.
  EXPECT_EQ(h.client->Get("/v1/review")->status, 401);
  EXPECT_EQ(h.client->Get("/v1/review", {{"Accept", "application/json"}})->status, 401);
  EXPECT_EQ(h.client->Get("/v1/review", Harness::auth(h.predict))->status, 403);
  EXPECT_EQ(h.client->Get("/v1/review/app.css")->status, 404);
}

TEST(ReviewPage, AReviewerConfirmsAFlaggedRequestInHeadlessChromium) {
  const std::string chromium = testing::find_chromium();
  // scripts/setup installs chromium: without it this test fails rather than skips.
  ASSERT_FALSE(chromium.empty()) << "chromium is not installed (scripts/setup installs it)";
  Harness h;
  image_model()->save(h.dir.file("image.pt"));
  h.start(h.config([&](ModelConfig& m) {
    m.path = h.dir.file("image.pt");
    m.fallback_path.clear();
    m.detection_policy = DetectionPolicy::Flag;
    m.detector_factory = [](ClassifierPtr) { return std::make_unique<MaxValueDetector>(0.95); };
  }));
  // A flagged request whose id is an HTML injection attempt.
  std::vector<float> pixels(16, 0.1f);
  pixels[1] = 1.0f;  // a saturated pixel in the top half: flagged, predicted "top"
  const std::string evil_id = "<img src=x onerror=\"document.title='pwned'\">";
  json body = {{"id", evil_id},
               {"inputs", {{{"name", "x"}, {"shape", {1, 1, 4, 4}}, {"datatype", "FP32"}, {"data", pixels}}}}};
  auto r = h.client->Post("/v2/models/m/infer", Harness::auth(h.predict), body.dump(), "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(r->get_header_value("X-Aegis-Flagged"), "detector");

  DevTools browser(chromium, h.dir.file("profile"));
  ASSERT_TRUE(browser.started());
  const std::string target =
      browser.call("Target.createTarget", {{"url", h.url() + "/v1/review"}})["targetId"].get<std::string>();
  const std::string page = browser
                               .call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})["sessionId"]
                               .get<std::string>();
  const std::string loaded = when(
      "document.readyState === 'complete' && document.getElementById('key')", "document.title");
  json title;
  for (int attempt = 0; attempt < 100 && title.is_null(); ++attempt) {
    try {  // the first document is replaced by the page while it loads
      title = browser.eval(page, loaded);
    } catch (const std::runtime_error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_EQ(title, "aegis: flagged requests");

  // A wrong key shows why and no items.
  browser.eval(page, "document.getElementById('key').value = 'aegis_000000000000_00'; "
                     "document.getElementById('load').click(); true");
  json status = browser.eval(page, when("document.getElementById('status').className === 'bad'",
                                        "document.getElementById('status').textContent"));
  EXPECT_NE(status.get<std::string>().find("401"), std::string::npos) << status;
  EXPECT_EQ(browser.eval(page, "document.querySelectorAll('section.item').length"), 0);

  // The admin key shows the flagged request: its reason, its id as text, and
  // the input and map drawn (the map red where the pixels push towards "top").
  browser.eval(page, "document.getElementById('key').value = " + json(h.admin).dump() +
                         "; document.getElementById('load').click(); true");
  json shown = browser.eval(page, when("document.querySelectorAll('section.item canvas.map').length === 1", R"(({
      items: document.querySelectorAll('section.item').length,
      text: document.querySelector('section.item').textContent,
      inputBright: (() => { const c = document.querySelector('canvas.input');
                            return c.getContext('2d').getImageData(1, 0, 1, 1).data[0]; })(),
      inputDark: (() => { const c = document.querySelector('canvas.input');
                          return c.getContext('2d').getImageData(0, 3, 1, 1).data[0]; })(),
      mapRed: (() => { const c = document.querySelector('canvas.map'), d = c.getContext('2d').getImageData(0, 0, 4, 4).data;
                       let n = 0; for (let i = 0; i < 64; i += 4) if (d[i] === 255 && d[i + 1] < 128) ++n; return n; })(),
      mapWhiteBottom: (() => { const c = document.querySelector('canvas.map'), d = c.getContext('2d').getImageData(0, 2, 4, 2).data;
                               let n = 0; for (let i = 0; i < 32; i += 4) if (d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255) ++n; return n; })()
    }))"));
  ASSERT_TRUE(shown.is_object()) << shown;
  EXPECT_EQ(shown["items"], 1);
  const std::string text = shown["text"];
  EXPECT_NE(text.find("detector"), std::string::npos) << text;
  EXPECT_NE(text.find(evil_id), std::string::npos) << text;  // shown literally
  EXPECT_NE(text.find("predicted top"), std::string::npos) << text;
  EXPECT_EQ(shown["inputBright"], 255);
  EXPECT_LT(shown["inputDark"].get<int>(), 40);
  EXPECT_GE(shown["mapRed"].get<int>(), 1);      // the bright pixel carries the decision
  EXPECT_EQ(shown["mapWhiteBottom"], 8);          // the bottom half has no weight for "top"

  // Confirm.
  browser.eval(page, "document.querySelector('button.confirm').click(); true");
  json decided = browser.eval(page, when("document.querySelector('.decision').textContent !== ''",
                                         "document.querySelector('.decision').textContent"));
  EXPECT_EQ(decided, "confirmed");
  EXPECT_EQ(browser.eval(page, "document.title"), "aegis: flagged requests");  // the id never ran
  EXPECT_TRUE(json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"].empty());
  h.server->stop();
  auto decisions = audit_rows(h.dir.file("audit.db"), "kind='response' AND decision='review-confirm'");
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0]["key_id"], key_id_of(h.predict));
  EXPECT_EQ(decisions[0]["details"]["admin"], key_id_of(h.admin));
  EXPECT_TRUE(verify_audit_log(h.dir.file("audit.db")).ok);
}

}  // namespace
}  // namespace aegis::serve
