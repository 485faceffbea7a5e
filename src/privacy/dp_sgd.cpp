#include "aegis/privacy/dp_sgd.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/privacy/accountant.h"
#include "aegis/privacy/dp_random.h"
#include "aegis/privacy/per_sample_grad.h"
#include "aegis/privacy/poisson_sampler.h"
#include "defenses/training/internal/train_support.h"

namespace aegis {

namespace fs = std::filesystem;

void DpSgdOptions::validate() const {
  AEGIS_CHECK(max_grad_norm_ > 0 && std::isfinite(max_grad_norm_), InvalidArgument,
              "the clipping norm (max grad norm) must be > 0, got " << max_grad_norm_);
  AEGIS_CHECK(noise_multiplier_ >= 0 && std::isfinite(noise_multiplier_), InvalidArgument,
              "the noise multiplier must be > 0, got " << noise_multiplier_);
  AEGIS_CHECK(noise_multiplier_ > 0 || target_epsilon_ > 0, InvalidArgument,
              "DP-SGD needs a target epsilon or a noise multiplier");
  AEGIS_CHECK(noise_multiplier_ == 0 || target_epsilon_ == 0, InvalidArgument,
              "give a target epsilon or a noise multiplier, not both");
  AEGIS_CHECK(target_epsilon_ >= 0 && std::isfinite(target_epsilon_), InvalidArgument,
              "the target epsilon must be > 0, got " << target_epsilon_);
  AEGIS_CHECK(delta_ > 0 && delta_ < 1, InvalidArgument, "delta must be in (0, 1), got " << delta_);
  AEGIS_CHECK(physical_batch_size_ >= 1, InvalidArgument,
              "the physical batch size must be >= 1, got " << physical_batch_size_);
  AEGIS_CHECK(clipping_ == "flat" || clipping_ == "per-layer", InvalidArgument,
              "clipping must be 'flat' or 'per-layer', got '" << clipping_ << "'");
  AEGIS_CHECK(ema_decay_ >= 0 && ema_decay_ < 1, InvalidArgument,
              "the weight-average decay must be in [0, 1) (0 = off), got " << ema_decay_);
  AEGIS_CHECK(accountant_ == "prv" || accountant_ == "rdp", InvalidArgument,
              "the accountant must be 'prv' or 'rdp', got '" << accountant_ << "'");
}

nlohmann::json DpSgdOptions::to_json() const {
  return {{"max_grad_norm", max_grad_norm_},
          {"noise_multiplier", noise_multiplier_},
          {"target_epsilon", target_epsilon_},
          {"delta", delta_},
          {"physical_batch_size", physical_batch_size_},
          {"clipping", clipping_},
          {"accountant", accountant_},
          {"seeded", seeded_},
          {"ema_decay", ema_decay_}};
}

nlohmann::json DpSgdResult::to_json() const { return {{"privacy", privacy}, {"result", training.to_json()}}; }

namespace {

using namespace training;

/// What must match for a checkpoint to be resumed: everything but the epochs.
nlohmann::json resume_key(const TrainOptions& o, const DpSgdOptions& dp) {
  nlohmann::json t = o.to_json();
  t.erase("epochs");
  return {{"train", t}, {"dp", dp.to_json()}};
}

}  // namespace

DpSgdResult train_dp_sgd(ScriptClassifier& model, const Dataset& data, const Dataset* val, const TrainOptions& o,
                         const DpSgdOptions& dp, const std::function<void(const EpochStats&)>& on_epoch) {
  o.validate();
  dp.validate();
  AEGIS_CHECK(o.patience_ == 0, InvalidArgument,
              "DP-SGD does not stop early: validation-based early stopping is a use of data the accountant does "
              "not see; set patience to 0");
  const int64_t N = data.size();
  AEGIS_CHECK(N > 0, InvalidArgument, "no training data");
  AEGIS_CHECK(o.batch_size_ <= N, InvalidArgument,
              "the expected batch size (" << o.batch_size_ << ") exceeds the training set (" << N << ")");
  const auto start = std::chrono::steady_clock::now();
  const int64_t B = o.batch_size_;
  const double q = double(B) / double(N);
  // Epoch e covers steps [ceil(e N / B), ceil((e + 1) N / B)): ceil(E / q) steps in all, as `aegis dp`.
  auto epoch_begin = [&](int64_t e) { return (e * N + B - 1) / B; };
  const int64_t total_steps = epoch_begin(o.epochs_);

  PerSampleGradient psg(model);  // refuses unsupported layers before anything else
  double sigma = dp.noise_multiplier_;
  std::unique_ptr<Accountant> accountant = make_accountant(dp.accountant_);
  const DpRandom rng = dp.seeded_ ? DpRandom::seeded(o.seed_) : DpRandom::secure();
  const PoissonSampler sampler(N, q);
  std::vector<torch::Tensor> params = model.parameters();
  auto optimizer = make_optimizer(o, params);

  DpSgdResult result;
  int64_t first_epoch = 0;
  const fs::path dir = o.checkpoint_dir_;
  if (!dir.empty()) fs::create_directories(dir);
  const fs::path state_file = dir / "state.json", model_file = dir / "model.pt", opt_file = dir / "optimizer.pt",
                 ema_file = dir / "ema.pt";
  // The weight average, when asked for (starts at the initial weights).
  std::vector<torch::Tensor> ema;
  if (dp.ema_decay_ > 0)
    for (const auto& p : params) ema.push_back(p.detach().clone());
  if (o.resume_ && fs::exists(state_file)) {
    nlohmann::json st;
    try {
      std::ifstream in(state_file);
      st = nlohmann::json::parse(in);
      auto saved = ScriptClassifier::load(model_file.string());
      torch::NoGradGuard g;
      auto from = saved->parameters();
      AEGIS_CHECK(from.size() == params.size(), CorruptData, "the checkpointed model has other parameters");
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(from[i]);
      torch::serialize::InputArchive ar;
      ar.load_from(opt_file.string());
      optimizer->load(ar);
      if (!ema.empty()) {
        torch::serialize::InputArchive ea;
        ea.load_from(ema_file.string());
        for (size_t i = 0; i < ema.size(); ++i) ea.read("ema" + std::to_string(i), ema[i]);
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      AEGIS_FAIL(CorruptData, "cannot resume from " << o.checkpoint_dir_ << ": " << one_line_message(e));
    }
    AEGIS_CHECK(st.value("options", nlohmann::json()) == resume_key(o, dp), InvalidArgument,
                "the checkpoint in " << o.checkpoint_dir_
                                     << " was made with other training or privacy options (only --epochs may change)");
    accountant = accountant_from_json(st.at("accountant"));
    sigma = st.at("noise_multiplier").get<double>();  // a target epsilon was turned into sigma once, at the start
    first_epoch = st.at("next_epoch").get<int64_t>();
    AEGIS_CHECK(accountant->total_steps() == epoch_begin(first_epoch), CorruptData,
                "the checkpoint's accountant recorded " << accountant->total_steps() << " steps, expected "
                                                        << epoch_begin(first_epoch));
    for (const auto& e : st.at("history")) {
      EpochStats s;
      s.epoch = e.at("epoch"), s.train_loss = e.at("train_loss"), s.train_accuracy = e.at("train_accuracy");
      s.val_loss = e.at("val_loss"), s.val_accuracy = e.at("val_accuracy"), s.lr = e.at("lr");
      s.seconds = e.at("seconds");
      result.training.history.push_back(s);
    }
    result.training.resumed = true;
    result.training.resumed_from_epoch = first_epoch;
    log_info(fmt::format("resuming DP-SGD from epoch {} of {} ({} steps already accounted)", first_epoch + 1, o.epochs_,
                         accountant->total_steps()));
  }

  if (sigma == 0) {
    sigma = find_noise_multiplier(dp.target_epsilon_, dp.delta_, q, total_steps, dp.accountant_, 1e-3).noise_multiplier;
    log_info(fmt::format("noise multiplier {:.4f} spends epsilon {} at delta {} over {} steps ({})", sigma,
                         dp.target_epsilon_, dp.delta_, total_steps, dp.accountant_));
  }
  const torch::Tensor all_x = data.x, all_y = data.y;
  for (int64_t epoch = first_epoch; epoch < o.epochs_; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    const int64_t s0 = epoch_begin(epoch), s1 = epoch_begin(epoch + 1);
    Progress bar(fmt::format("epoch {}/{} (DP-SGD)", epoch + 1, o.epochs_), s1 - s0);
    double loss_sum = 0, lr = o.lr_;
    int64_t correct = 0, seen = 0;
    model.module().train(true);  // dropout on; parameters stay frozen: only the probes need gradients
    for (int64_t step = s0; step < s1; ++step) {
      DpStream stream = rng.stream(step);
      const std::vector<int64_t> batch = sampler.sample(stream);
      std::vector<torch::Tensor> sum;
      for (const auto& p : params) sum.push_back(torch::zeros_like(p));
      for (size_t i = 0; i < batch.size(); i += size_t(dp.physical_batch_size_)) {
        const size_t end = std::min(batch.size(), i + size_t(dp.physical_batch_size_));
        torch::Tensor idx = torch::tensor(std::vector<int64_t>(batch.begin() + long(i), batch.begin() + long(end)));
        torch::Tensor x = all_x.index_select(0, idx), y = all_y.index_select(0, idx);
        ClippedGradSum g = psg.clipped_sum(x, y, dp.max_grad_norm_, dp.clipping_, o.label_smoothing_);
        for (size_t p = 0; p < sum.size(); ++p) sum[p] += g.sum[p];
        loss_sum += g.losses.sum().item<double>();
        correct += (g.logits.argmax(1) == y).sum().item<int64_t>();
        seen += int64_t(end - i);
      }
      lr = scheduled_lr(o, step, total_steps);
      set_lr(*optimizer, lr);
      for (size_t p = 0; p < params.size(); ++p) {
        torch::Tensor noise = stream.gaussian(params[p].sizes().vec(), sigma * dp.max_grad_norm_);
        params[p].mutable_grad() = (sum[p] + noise.to(sum[p].options())) / double(B);
      }
      optimizer->step();
      accountant->step(sigma, q);
      if (!ema.empty()) {
        const double d = std::min(dp.ema_decay_, (1.0 + double(step)) / (10.0 + double(step)));
        torch::NoGradGuard g;
        for (size_t p = 0; p < params.size(); ++p) ema[p].mul_(d).add_(params[p].detach(), 1 - d);
      }
      bar.advance(1, fmt::format("loss {:.4f}", seen ? loss_sum / double(seen) : 0.0));
    }
    model.module().train(false);
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    AEGIS_CHECK(std::isfinite(loss_sum), Internal,
                "training diverged (loss is not finite) at epoch " << epoch + 1 << "; lower the learning rate");
    EpochStats s;
    s.epoch = epoch + 1;
    s.train_loss = seen ? loss_sum / double(seen) : 0.0;
    s.train_accuracy = seen ? double(correct) / double(seen) : 0.0;
    s.lr = lr;
    if (val && val->size() > 0) s.val_accuracy = validation_pass(model, *val, 256, s.val_loss);
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    bar.finish(fmt::format("loss {:.4f}, epsilon {:.3f}", s.train_loss, accountant->epsilon(dp.delta_)));
    result.training.history.push_back(s);
    result.training.best_epoch = s.epoch;
    if (on_epoch) on_epoch(s);

    if (!dir.empty()) {
      model.save(model_file.string());
      torch::serialize::OutputArchive ar;
      optimizer->save(ar);
      if (!ema.empty()) {
        torch::serialize::OutputArchive ea;
        for (size_t i = 0; i < ema.size(); ++i) ea.write("ema" + std::to_string(i), ema[i]);
        fs::path etmp = ema_file;
        etmp += ".tmp";
        ea.save_to(etmp.string());
        fs::rename(etmp, ema_file);
      }
      fs::path tmp = opt_file;
      tmp += ".tmp";
      ar.save_to(tmp.string());
      fs::rename(tmp, opt_file);
      nlohmann::json hist = nlohmann::json::array();
      for (const auto& e : result.training.history) hist.push_back(e.to_json());
      write_json_atomic(state_file, {{"next_epoch", epoch + 1},
                                     {"options", resume_key(o, dp)},
                                     {"noise_multiplier", sigma},
                                     {"accountant", accountant->to_json()},
                                     {"history", hist}});
    }
  }
  model.set_training(false);
  if (!ema.empty()) {  // the model keeps the average of its private iterates
    torch::NoGradGuard g;
    for (size_t p = 0; p < params.size(); ++p) params[p].copy_(ema[p]);
  }

  result.noise_multiplier = sigma;
  result.sample_rate = q;
  result.steps = accountant->total_steps();
  result.delta = dp.delta_;
  result.epsilon = accountant->epsilon(dp.delta_);
  result.accountant = accountant->name();
  result.seeded = dp.seeded_;
  result.training.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.privacy = {{"mechanism", "dp-sgd"},
                    {"epsilon", result.epsilon},
                    {"delta", result.delta},
                    {"accountant", result.accountant},
                    {"noise_multiplier", sigma},
                    {"max_grad_norm", dp.max_grad_norm_},
                    {"clipping", dp.clipping_},
                    {"sample_rate", q},
                    {"expected_batch_size", B},
                    {"dataset_size", N},
                    {"steps", result.steps},
                    {"history", accountant->to_json().at("history")},
                    {"noise", dp.seeded_ ? "seeded (reproducible; NOT private against anyone who knows the seed)"
                                         : "secure (operating system CSPRNG)"},
                    {"seeded", dp.seeded_},
                    {"adjacency", "add or remove one training example"}};
  if (dp.ema_decay_ > 0) result.privacy["ema_decay"] = dp.ema_decay_;
  if (dp.seeded_) result.privacy["seed"] = o.seed_;
  if (dp.target_epsilon_ > 0) {
    result.privacy["target_epsilon"] = dp.target_epsilon_;
    if (result.epsilon > dp.target_epsilon_)  // a resumed run given more epochs than sigma was chosen for
      log_info(fmt::format("warning: this run spent epsilon {:.4f}, above its target {} (resumed with more epochs)",
                           result.epsilon, dp.target_epsilon_));
  }
  nlohmann::json& prov = model.mutable_meta().provenance;
  prov["privacy"] = result.privacy;
  prov["training"] = {{"objective", "dp-sgd"},
                      {"objective_options", dp.to_json()},
                      {"options", o.to_json()},
                      {"data", {{"source", data.source}, {"samples", N}, {"fingerprint", data.fingerprint()}}},
                      {"epochs_run", int64_t(result.training.history.size())},
                      {"best_epoch", result.training.best_epoch}};
  return result;
}

}  // namespace aegis
