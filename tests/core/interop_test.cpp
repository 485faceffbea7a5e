// Interoperability with PyTorch (Debian's python3-torch): models exported by
// PyTorch the way users do load in aegis with the same logits, and models
// aegis saves load in PyTorch with the same logits.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

class Interop : public ::testing::Test {
 protected:
  void SetUp() override {
    py_ = testing::python_with_torch();
    if (py_.empty()) GTEST_SKIP() << "python3 with torch (Debian's python3-torch) is not installed";
  }
  testing::CommandResult python(const std::string& script) {
    std::ofstream(dir_.file("script.py")) << script;
    return testing::run_command(py_ + " " + dir_.file("script.py"));
  }
  std::string py_;
  testing::TempDir dir_;
};

TEST_F(Interop, PyTorchExportLoadsWithPyTorchsLogits) {
  save_npy(torch::rand({16, 1, 28, 28}, make_generator(1)), dir_.file("x.npy"));
  const std::string script = R"(
import json, numpy as np, torch
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 14 * 14, 5)
    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(x, 1))
net = Net()
# Non-trivial batch-norm statistics, then eval mode as users export.
net.train()
for _ in range(3): net(torch.rand(32, 1, 28, 28))
net.eval()
x = torch.from_numpy(np.load('DIR/x.npy'))
scripted = torch.jit.script(net)
torch.jit.save(scripted, 'DIR/scripted.pt')
meta = {"input_shape": [1, 28, 28], "num_classes": 5, "class_names": ["a", "b", "c", "d", "e"]}
torch.jit.save(scripted, 'DIR/with_meta.pt', _extra_files={"aegis.json": json.dumps(meta)})
torch.jit.save(torch.jit.trace(net, x[:2]), 'DIR/traced.pt')
with torch.no_grad(): np.save('DIR/logits.npy', net(x).numpy())
)";
  std::string s = script;
  for (size_t p; (p = s.find("DIR")) != std::string::npos;) s.replace(p, 3, dir_.path().string());
  auto r = python(s);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  torch::Tensor x = parse_npy(read_file_bytes(dir_.file("x.npy")));
  torch::Tensor expected = parse_npy(read_file_bytes(dir_.file("logits.npy")));
  for (const char* file : {"scripted.pt", "traced.pt"}) {
    auto m = ScriptClassifier::load(dir_.file(file), ModelOverrides().input_shape({1, 28, 28}));
    EXPECT_EQ(m->meta().num_classes, 5);
    EXPECT_LT((m->logits(x) - expected).abs().max().item<double>(), 1e-5) << file;
  }
  auto with_meta = ScriptClassifier::load(dir_.file("with_meta.pt"));
  EXPECT_EQ(with_meta->meta().class_names[4], "e");
  EXPECT_LT((with_meta->logits(x) - expected).abs().max().item<double>(), 1e-5);
}

TEST_F(Interop, AegisModelLoadsInPyTorchWithTheSameLogits) {
  seed_everything(3);
  auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10).normalization({0.3}, {0.4}).dropout(0.3));
  m->save(dir_.file("aegis.pt"));
  torch::Tensor x = torch::rand({8, 1, 28, 28}, make_generator(2));
  save_npy(x, dir_.file("x.npy"));
  save_npy(m->logits(x), dir_.file("aegis_logits.npy"));
  std::string s = R"(
import json, numpy as np, torch
files = {"aegis.json": ""}
m = torch.jit.load('DIR/aegis.pt', _extra_files=files)
meta = json.loads(files["aegis.json"])
assert meta["input_shape"] == [1, 28, 28], meta
m.eval()
with torch.no_grad(): out = m(torch.from_numpy(np.load('DIR/x.npy'))).numpy()
ref = np.load('DIR/aegis_logits.npy')
print(float(np.abs(out - ref).max()))
)";
  for (size_t p; (p = s.find("DIR")) != std::string::npos;) s.replace(p, 3, dir_.path().string());
  auto r = python(s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(std::stod(r.out), 1e-5) << r.out;
}

}  // namespace
}  // namespace aegis
