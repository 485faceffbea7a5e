#pragma once
/// STRIP (Gao et al. 2019, "STRIP: A defence against trojan attacks on deep
/// neural networks"): a runtime check for backdoor-triggered inputs. The
/// input is superimposed with N clean images from a held-out pool and the
/// model's prediction entropy is averaged over the N blends. A clean input's
/// content is overwhelmed by the overlays, so its blends are classified all
/// over the place (high entropy); a triggered input's trigger survives the
/// blending and keeps pulling every blend to the target class (low entropy).
/// The score is the negated mean entropy (higher = more likely triggered);
/// calibrate the threshold on clean data for the false-rejection rate the
/// service can afford (the paper: 1%).
///
/// Blending is Gao et al.'s saturating addition (x + overlay, clipped to the
/// model's input range) or a mix (1 - alpha) x + alpha overlay. With a pool
/// larger than N each input gets N overlays drawn at random (the detector is
/// then randomised and an adaptive attack averages over draws); with a pool of
/// exactly N every input gets the same overlays.
///
/// The detector knows nothing about adversarial examples: it answers "does
/// something in this input dominate whatever it is mixed with?", which is the
/// signature of a trigger. Its cost is N forwards per input.
///
///   auto det = STRIPDetector::fit(model, clean_holdout.x, STRIPOptions().overlays(100));
///   det->calibrate(clean_val.x, 0.01);   // 1% of clean requests flagged
///   torch::Tensor flags = det->flag(x);

#include <cstdint>
#include <memory>
#include <string>

#include "aegis/defenses/detectors/detector.h"

namespace aegis {

struct STRIPOptions {
  int64_t overlays_ = 100;      ///< N: blends per input (the paper's N = 100)
  int64_t pool_ = 100;          ///< clean overlay images kept (>= overlays; more = random draws per input)
  std::string blend_ = "add";   ///< "add" (x + overlay, clipped: Gao et al.) or "mix"
  double alpha_ = 0.5;          ///< "mix": weight of the overlay, in (0, 1)
  int64_t batch_size_ = 2048;   ///< blended images per forward

  STRIPOptions& overlays(int64_t v) { overlays_ = v; return *this; }
  STRIPOptions& pool(int64_t v) { pool_ = v; return *this; }
  STRIPOptions& blend(std::string v) { blend_ = std::move(v); return *this; }
  STRIPOptions& alpha(double v) { alpha_ = v; return *this; }
  STRIPOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
};

class STRIPDetector : public Detector {
 public:
  /// `pool`: clean overlay images [P, input_shape...], P >= options.overlays.
  /// Throws InvalidArgument for bad options or too small a pool,
  /// ShapeMismatch for a pool that does not fit the model.
  STRIPDetector(ClassifierPtr model, torch::Tensor pool, STRIPOptions options);
  /// The first `options.pool` rows of `clean_x` become the overlay pool.
  static std::unique_ptr<STRIPDetector> fit(ClassifierPtr model, const torch::Tensor& clean_x,
                                            const STRIPOptions& options = {});
  static std::unique_ptr<Detector> from_state(const nlohmann::json& state, ClassifierPtr model);

  std::string name() const override { return "strip"; }
  /// [batch] negated mean prediction entropy (nats) over the input's blends.
  torch::Tensor score(const torch::Tensor& x) override;
  /// The same function with autograd (the blend and the entropy are differentiable).
  torch::Tensor score_graph(const torch::Tensor& x) override;
  std::string surrogate() const override { return "exact"; }
  bool randomized() const override { return pool_.size(0) > o_.overlays_; }
  const STRIPOptions& options() const { return o_; }
  const torch::Tensor& pool() const { return pool_; }
  /// [B * N, input_shape...]: each input's N blends, input-major.
  torch::Tensor blends(const torch::Tensor& x) const;

 protected:
  nlohmann::json state_json() const override;

 private:
  torch::Tensor mean_entropy(const torch::Tensor& x, bool grad);
  ClassifierPtr model_;
  torch::Tensor pool_;
  STRIPOptions o_;
};

}  // namespace aegis
