#include "aegis/serve/config.h"

#include <gtest/gtest.h>

#include "aegis/core/error.h"

namespace aegis::serve {
namespace {

std::string error_of(const std::string& toml) {
  try {
    parse_serve_config(toml, "/base");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    return e.what();
  }
  return "";
}

TEST(ServeConfig, ParsesEverySectionAndResolvesPaths) {
  ServeConfig c = parse_serve_config(R"(
[server]
host = "0.0.0.0"
port = 9000
keys = "k.json"
audit_log = "/var/audit.db"
max_body_bytes = 4096
metrics_public = true

[[models]]
name = "fmnist"
path = "model.pt"
fallback = "robust.pt"
max_batch = 32
detector = "auto"
detection_policy = "reject"

[models.batching]
max_batch = 16
max_delay_ms = 5

[models.rate]
requests_per_s = 10
samples_per_s = 100
sample_burst = 50
daily_samples = 1000

[models.output]
mode = "topk"
top_k = 2
noise = "laplace"
epsilon = 2.0

[models.monitor]
k = 7
knn_threshold = 1.5

[models.explain]
methods = ["saliency", "lime"]
max_queries = 500
review_method = "saliency"
review_samples = 2

[[models.rules]]
source = "monitor"
window = 10
max_alert_rate = 0.3
action = "fallback"
)",
                                     "/base");
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9000);
  EXPECT_EQ(c.server.keys_path, "/base/k.json");
  EXPECT_EQ(c.server.audit_path, "/var/audit.db");
  EXPECT_TRUE(c.server.metrics_public);
  ASSERT_EQ(c.models.size(), 1u);
  const ModelConfig& m = c.models[0];
  EXPECT_EQ(m.path, "/base/model.pt");
  EXPECT_EQ(m.fallback_path, "/base/robust.pt");
  EXPECT_EQ(m.detector_path, "/base/model.pt.detector.json");
  EXPECT_EQ(m.detection_policy, DetectionPolicy::Reject);
  EXPECT_TRUE(m.batching.enabled);
  EXPECT_EQ(m.batching.max_batch, 16);
  EXPECT_EQ(m.rate.requests.rate, 10);
  EXPECT_EQ(m.rate.requests.burst, 10);
  EXPECT_EQ(m.rate.samples.burst, 50);
  EXPECT_EQ(m.rate.daily_samples, 1000);
  EXPECT_EQ(m.output.mode_, OutputMode::TopK);
  EXPECT_EQ(m.output.noise_, NoiseMechanism::Laplace);
  EXPECT_EQ(m.monitor_options.k_, 7);
  EXPECT_EQ(m.monitor_options.knn_threshold_, 1.5);
  ASSERT_EQ(m.rules.size(), 1u);
  EXPECT_EQ(m.rules[0].action, ResponseAction::Fallback);
  EXPECT_TRUE(m.explain.enabled);
  EXPECT_EQ(m.explain.methods, (std::vector<std::string>{"saliency", "lime"}));
  EXPECT_EQ(m.explain.max_queries, 500);
  EXPECT_EQ(m.explain.review_method, "saliency");
  EXPECT_EQ(m.explain.review_samples, 2);
  EXPECT_EQ(c.find("fmnist"), &c.models[0]);
  EXPECT_EQ(c.find("other"), nullptr);
}

TEST(ServeConfig, BadSettingsAreNamed) {
  const std::string model = "[[models]]\nname = \"m\"\npath = \"m.pt\"\n";
  EXPECT_NE(error_of("this is = not toml =").find("not valid TOML"), std::string::npos);
  EXPECT_NE(error_of("[server]\nport = 1\n").find("no model"), std::string::npos);
  EXPECT_NE(error_of("[server]\nprot = 1\n" + model).find("server.prot"), std::string::npos);
  EXPECT_NE(error_of("[server]\nport = \"80\"\n" + model).find("server.port must be an integer"), std::string::npos);
  EXPECT_NE(error_of("[server]\nport = 70000\n" + model).find("port"), std::string::npos);
  EXPECT_NE(error_of(model + "[models.output]\nmode = \"all\"\n").find("output mode"), std::string::npos);
  EXPECT_NE(error_of(model + "[models.output]\nnoise = \"gaussian\"\nepsilon = 3.0\n").find("epsilon < 1"),
            std::string::npos);
  EXPECT_NE(error_of(model + "[[models.rules]]\naction = \"fallback\"\n").find("fallback model"), std::string::npos);
  EXPECT_NE(error_of(model + model).find("configured twice"), std::string::npos);
  EXPECT_NE(error_of("[[models]]\nname = \"a/b\"\npath = \"m.pt\"\n").find("model name"), std::string::npos);
  EXPECT_NE(error_of(model + "detection_policy = \"block\"\n").find("detection policy"), std::string::npos);
  EXPECT_NE(error_of(model + "input_shape = [1, \"28\"]\n").find("models[m].input_shape must be an array of integers"),
            std::string::npos);
  EXPECT_NE(error_of(model + "input_shape = [0, 28]\n").find("dimensions must be >= 1"), std::string::npos);
  EXPECT_NE(error_of(model + "classes = 1\n").find("classes must be >= 2"), std::string::npos);
  EXPECT_NE(error_of(model + "clip = [1.0]\n").find("clip must be [min, max]"), std::string::npos);
  EXPECT_NE(error_of(model + "mean = [0.5]\n").find("mean and std go together"), std::string::npos);
  EXPECT_NE(error_of(model + "class_names = [1, 2]\n").find("array of strings"), std::string::npos);
  EXPECT_NE(error_of(model + "[models.explain]\nmethods = [\"ig\", \"magic\"]\n").find("explain.methods 'magic'"),
            std::string::npos);
  EXPECT_NE(error_of(model + "[models.explain]\nreview_method = \"eg\"\n").find("background"), std::string::npos);
  EXPECT_NE(error_of(model + "[models.explain]\nmax_queries = 0\n").find("max_queries"), std::string::npos);
  EXPECT_NE(error_of(model + "[models.explain]\nsteps = 3\n").find("explain.steps"), std::string::npos);
}

TEST(ServeConfig, ModelMetadataForArchivesWithoutIt) {
  ServeConfig c = parse_serve_config(
      "[[models]]\nname = \"m\"\npath = \"m.pt\"\ninput_shape = [1, 28, 28]\nclasses = 10\nclip = [0.0, 255.0]\n"
      "mean = [0.5]\nstd = [0.25]\nclass_names = [\"a\", \"b\"]\n",
      "/srv");
  const ModelOverrides& o = c.models[0].meta;
  EXPECT_EQ(*o.input_shape_, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(*o.num_classes_, 10);
  EXPECT_EQ(*o.clip_max_, 255.0);
  EXPECT_EQ(*o.mean_, std::vector<double>{0.5});
  EXPECT_EQ(*o.std_, std::vector<double>{0.25});
  EXPECT_EQ(o.class_names_->size(), 2u);
  EXPECT_EQ(c.models[0].to_json()["meta"]["input_shape"], nlohmann::json({1, 28, 28}));
  EXPECT_TRUE(parse_serve_config("[[models]]\nname = \"m\"\npath = \"m.pt\"\n").models[0].meta.empty());
}

}  // namespace
}  // namespace aegis::serve
