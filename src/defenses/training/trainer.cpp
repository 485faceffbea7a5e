#include "aegis/defenses/training/trainer.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "defenses/training/internal/train_support.h"

namespace aegis {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

void TrainOptions::validate() const {
  AEGIS_CHECK(epochs_ >= 1, InvalidArgument, "epochs must be >= 1, got " << epochs_);
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "batch size must be >= 1, got " << batch_size_);
  AEGIS_CHECK(lr_ > 0 && std::isfinite(lr_), InvalidArgument, "learning rate must be > 0, got " << lr_);
  AEGIS_CHECK(weight_decay_ >= 0, InvalidArgument, "weight decay must be >= 0, got " << weight_decay_);
  AEGIS_CHECK(label_smoothing_ >= 0 && label_smoothing_ < 1, InvalidArgument,
              "label smoothing must be in [0, 1), got " << label_smoothing_);
  AEGIS_CHECK(optimizer_ == "adam" || optimizer_ == "sgd", InvalidArgument,
              "optimizer must be 'adam' or 'sgd', got '" << optimizer_ << "'");
  AEGIS_CHECK(schedule_ == "constant" || schedule_ == "cosine" || schedule_ == "onecycle", InvalidArgument,
              "schedule must be 'constant', 'cosine' or 'onecycle', got '" << schedule_ << "'");
  AEGIS_CHECK(patience_ >= 0, InvalidArgument, "patience must be >= 0");
  AEGIS_CHECK(!resume_ || !checkpoint_dir_.empty(), InvalidArgument, "resume needs a checkpoint directory");
}

nlohmann::json TrainOptions::to_json() const {
  return {{"epochs", epochs_},       {"batch_size", batch_size_},   {"lr", lr_},
          {"weight_decay", weight_decay_}, {"momentum", momentum_}, {"label_smoothing", label_smoothing_},
          {"optimizer", optimizer_}, {"schedule", schedule_},       {"patience", patience_},
          {"seed", seed_}};
}

nlohmann::json EpochStats::to_json() const {
  return {{"epoch", epoch}, {"train_loss", train_loss}, {"train_accuracy", train_accuracy},
          {"train_accuracy_on", train_accuracy_on}, {"val_loss", val_loss}, {"val_accuracy", val_accuracy},
          {"lr", lr}, {"seconds", seconds}};
}

nlohmann::json TrainResult::to_json() const {
  nlohmann::json h = nlohmann::json::array();
  for (const auto& e : history) h.push_back(e.to_json());
  return {{"history", h}, {"best_epoch", best_epoch}, {"stopped_early", stopped_early},
          {"resumed", resumed}, {"resumed_from_epoch", resumed_from_epoch}, {"seconds", seconds}};
}

torch::Tensor CrossEntropyObjective::loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                                          torch::Tensor& clean_logits) {
  clean_logits = model.forward(batch.x);
  return F::cross_entropy(clean_logits, batch.y, F::CrossEntropyFuncOptions().label_smoothing(ctx.label_smoothing));
}

namespace training {

double scheduled_lr(const TrainOptions& o, int64_t global_step, int64_t total_steps) {
  double t = double(global_step) / double(std::max<int64_t>(total_steps, 1));
  if (o.schedule_ == "cosine") return o.lr_ * 0.5 * (1 + std::cos(M_PI * t));
  if (o.schedule_ == "onecycle") {
    const double warm = 0.2;
    return t < warm ? o.lr_ * (0.1 + 0.9 * t / warm) : o.lr_ * 0.5 * (1 + std::cos(M_PI * (t - warm) / (1 - warm)));
  }
  return o.lr_;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, const std::vector<torch::Tensor>& params) {
  if (o.optimizer_ == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr_).momentum(o.momentum_).weight_decay(o.weight_decay_).nesterov(o.momentum_ > 0));
  }
  return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(o.lr_).weight_decay(o.weight_decay_));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

void write_json_atomic(const fs::path& p, const nlohmann::json& j) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    AEGIS_CHECK(out.good(), Io, "cannot write " << tmp.string());
    out << j.dump(2);
  }
  fs::rename(tmp, p);
}

double validation_pass(ScriptClassifier& model, const Dataset& val, int64_t batch, double& loss_out) {
  torch::NoGradGuard g;
  double loss = 0;
  int64_t correct = 0;
  for (const auto& b : val.batches(std::max<int64_t>(batch, 256))) {
    torch::Tensor logits = model.logits(b.x);
    loss += F::cross_entropy(logits, b.y, F::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
    correct += (logits.argmax(1) == b.y).sum().item<int64_t>();
  }
  loss_out = loss / double(std::max<int64_t>(val.size(), 1));
  return double(correct) / double(std::max<int64_t>(val.size(), 1));
}

}  // namespace training

namespace {

using namespace training;

/// Copies of every parameter and buffer: the best weights seen so far.
std::vector<torch::Tensor> snapshot(ScriptClassifier& m) {
  std::vector<torch::Tensor> out;
  for (auto& [name, t] : m.named_tensors()) out.push_back(t.detach().clone());
  return out;
}

void restore(ScriptClassifier& m, const std::vector<torch::Tensor>& snap) {
  torch::NoGradGuard g;
  auto tensors = m.named_tensors();
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].second.copy_(snap[i]);
}

struct Checkpoint {
  fs::path dir;
  fs::path model() const { return dir / "model.pt"; }
  fs::path optimizer() const { return dir / "optimizer.pt"; }
  fs::path state() const { return dir / "state.json"; }
  fs::path best() const { return dir / "best.pt"; }
};

}  // namespace

TrainResult train(ScriptClassifier& model, const Dataset& data, const Dataset* val, const TrainOptions& o,
                  Objective* objective, const std::function<void(const EpochStats&)>& on_epoch) {
  o.validate();
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "no training data");
  CrossEntropyObjective standard;
  Objective& obj = objective ? *objective : standard;
  auto start = std::chrono::steady_clock::now();

  TrainResult result;
  std::vector<torch::Tensor> params = model.parameters();
  auto optimizer = make_optimizer(o, params);
  const int64_t steps_per_epoch = (data.size() + o.batch_size_ - 1) / o.batch_size_;
  const int64_t total_steps = steps_per_epoch * o.epochs_;

  int64_t first_epoch = 0;
  double best_val = -1;
  int64_t since_best = 0;
  std::vector<torch::Tensor> best_weights;
  Checkpoint ck{o.checkpoint_dir_};
  if (!o.checkpoint_dir_.empty()) fs::create_directories(ck.dir);

  if (o.resume_ && fs::exists(ck.state())) {
    nlohmann::json st;
    try {
      std::ifstream in(ck.state());
      st = nlohmann::json::parse(in);
      auto saved = ScriptClassifier::load(ck.model().string());
      restore(model, snapshot(*saved));
      torch::serialize::InputArchive ar;
      ar.load_from(ck.optimizer().string());
      optimizer->load(ar);
      torch::Tensor rng;
      ar.read("global_rng_state", rng);
      auto gen = torch::globalContext().defaultGenerator(torch::kCPU);
      gen.set_state(rng);
      if (fs::exists(ck.best())) best_weights = snapshot(*ScriptClassifier::load(ck.best().string()));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      AEGIS_FAIL(CorruptData, "cannot resume from " << o.checkpoint_dir_ << ": " << one_line_message(e));
    }
    AEGIS_CHECK(st.value("options", nlohmann::json()) == o.to_json(), InvalidArgument,
                "the checkpoint in " << o.checkpoint_dir_ << " was made with other training options");
    first_epoch = st.at("next_epoch").get<int64_t>();
    best_val = st.value("best_val", -1.0);
    since_best = st.value("since_best", int64_t{0});
    result.best_epoch = st.value("best_epoch", int64_t{0});
    for (const auto& e : st.at("history")) {
      EpochStats s;
      s.epoch = e.at("epoch"); s.train_loss = e.at("train_loss"); s.train_accuracy = e.at("train_accuracy");
      s.val_loss = e.at("val_loss"); s.val_accuracy = e.at("val_accuracy"); s.lr = e.at("lr"); s.seconds = e.at("seconds");
      result.history.push_back(s);
    }
    result.resumed = true;
    result.resumed_from_epoch = first_epoch;
    log_info(fmt::format("resuming from epoch {} of {}", first_epoch + 1, o.epochs_));
  }

  for (int64_t epoch = first_epoch; epoch < o.epochs_; ++epoch) {
    if (o.patience_ > 0 && since_best >= o.patience_) {
      result.stopped_early = true;
      break;
    }
    auto epoch_start = std::chrono::steady_clock::now();
    auto batches = data.batches(o.batch_size_, derive_seed(o.seed_, "epoch-" + std::to_string(epoch)));
    Progress bar(fmt::format("epoch {}/{}", epoch + 1, o.epochs_), int64_t(batches.size()));
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    bool counted = false;  // the objective gave logits to count
    double lr = o.lr_;
    {
      TrainingScope scope(model);
      for (size_t i = 0; i < batches.size(); ++i) {
        const Batch& b = batches[i];
        lr = scheduled_lr(o, epoch * steps_per_epoch + int64_t(i), total_steps);
        set_lr(*optimizer, lr);
        StepContext ctx{epoch, o.epochs_, int64_t(i), steps_per_epoch, o.label_smoothing_};
        torch::Tensor clean_logits;
        optimizer->zero_grad();
        torch::Tensor loss = obj.loss(model, b, ctx, clean_logits);
        AEGIS_CHECK(std::isfinite(loss.item<double>()), Internal,
                    "training diverged (loss is not finite) at epoch " << epoch + 1 << "; lower the learning rate");
        loss.backward();
        optimizer->step();
        loss_sum += loss.item<double>() * double(b.x.size(0));
        seen += b.x.size(0);
        if (clean_logits.defined()) {
          correct += (clean_logits.detach().argmax(1) == b.y).sum().item<int64_t>();
          counted = true;
        }
        bar.advance(1, fmt::format("loss {:.4f}", loss_sum / double(seen)));
      }
    }
    EpochStats s;
    s.epoch = epoch + 1;
    s.train_loss = loss_sum / double(seen);
    s.train_accuracy = double(correct) / double(seen);
    s.train_accuracy_on = counted ? obj.train_accuracy_inputs() : "none";
    s.lr = lr;
    if (val && val->size() > 0) {
      s.val_accuracy = validation_pass(model, *val, o.batch_size_, s.val_loss);
      if (s.val_accuracy > best_val) {
        best_val = s.val_accuracy;
        since_best = 0;
        result.best_epoch = s.epoch;
        if (o.patience_ > 0) best_weights = snapshot(model);
      } else {
        ++since_best;
      }
    } else {
      result.best_epoch = s.epoch;
    }
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    bar.finish(val ? fmt::format("loss {:.4f} val acc {:.4f}", s.train_loss, s.val_accuracy)
                   : fmt::format("loss {:.4f}", s.train_loss));
    result.history.push_back(s);
    if (on_epoch) on_epoch(s);

    if (!o.checkpoint_dir_.empty()) {
      model.save(ck.model().string());
      if (o.patience_ > 0 && result.best_epoch == s.epoch) model.save(ck.best().string());
      torch::serialize::OutputArchive ar;
      optimizer->save(ar);
      ar.write("global_rng_state", torch::globalContext().defaultGenerator(torch::kCPU).get_state());
      fs::path tmp = ck.optimizer();
      tmp += ".tmp";
      ar.save_to(tmp.string());
      fs::rename(tmp, ck.optimizer());
      nlohmann::json hist = nlohmann::json::array();
      for (const auto& e : result.history) hist.push_back(e.to_json());
      write_json_atomic(ck.state(), {{"next_epoch", epoch + 1}, {"options", o.to_json()}, {"best_val", best_val},
                                     {"since_best", since_best}, {"best_epoch", result.best_epoch}, {"history", hist}});
    }
  }
  if (o.patience_ > 0 && !best_weights.empty()) restore(model, best_weights);
  model.set_training(false);
  for (auto& p : params) p.mutable_grad() = torch::Tensor();  // no stale gradients left behind

  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json& prov = model.mutable_meta().provenance;
  prov["training"] = {{"objective", obj.name()}, {"objective_options", obj.describe()}, {"options", o.to_json()},
                      {"data", {{"source", data.source}, {"samples", data.size()}, {"fingerprint", data.fingerprint()}}},
                      {"epochs_run", int64_t(result.history.size())}, {"best_epoch", result.best_epoch}};
  return result;
}

}  // namespace aegis
