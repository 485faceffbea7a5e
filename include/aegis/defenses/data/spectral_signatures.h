#pragma once
/// Spectral signatures (Tran, Li and Madry 2018): poisoned samples leave a
/// trace along the top singular vector of a class's penultimate features.
/// Per class, features are centred and projected on that vector; the squared
/// projection is each sample's score.
///
///   auto model = ScriptClassifier::load("trained-on-data.pt");  // needs features()
///   SuspectReport r = spectral_signatures(*model, data, SpectralOptions());
///
/// Which samples are flagged: with `expected_fraction` set (an upper bound
/// on the poison rate, as in the paper) the top 1.5 * fraction * n of each
/// class, whether or not the class is poisoned. Otherwise (default, the gap
/// rule) the projections are split in two by exact 1-D two-means, and the
/// smaller group is flagged only when an empty gap separates it from the rest:
/// the kernel density at its lowest point between the two groups is at most
/// `max_valley` of the lower of the two peaks (Gaussian kernel, Silverman's
/// bandwidth on the within-group spread). A
/// backdoor's samples sit apart along that direction (ratio ~0.01 on
/// Fashion-MNIST), while clean classes that are merely bimodal have a
/// shallow dip (ratio >= 0.3), so clean classes cost no samples and the
/// cut-off comes from the scores, not from a guessed rate. The smaller group
/// must also be at most `max_poison_fraction` of the class; this repeats on
/// the remaining samples (up to `max_rounds`), since poison drawn from
/// several source classes can form several groups.

#include <cstdint>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/data/suspects.h"

namespace aegis {

struct SpectralOptions {
  double expected_fraction_ = 0;      ///< > 0: flag top 1.5 * this per class; 0 = gap rule
  double max_valley_ = 0.2;           ///< in (0, 1): gap rule, deepest density dip a flagged split needs
  double max_poison_fraction_ = 0.5;  ///< in (0, 1): the flagged group's largest share of a class
  int64_t min_class_size_ = 20;       ///< classes with fewer samples are skipped, >= 4
  int64_t max_rounds_ = 4;            ///< gap rule: groups split off per class, >= 1
  int64_t batch_size_ = 512;

  SpectralOptions& expected_fraction(double v) { expected_fraction_ = v; return *this; }
  SpectralOptions& max_valley(double v) { max_valley_ = v; return *this; }
  SpectralOptions& max_poison_fraction(double v) { max_poison_fraction_ = v; return *this; }
  SpectralOptions& min_class_size(int64_t v) { min_class_size_ = v; return *this; }
  SpectralOptions& max_rounds(int64_t v) { max_rounds_ = v; return *this; }
  SpectralOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  nlohmann::json to_json() const;
};

/// `model` should be the one trained on `data`. Throws Unsupported when it
/// has no features(), ShapeMismatch when data and model disagree.
SuspectReport spectral_signatures(ScriptClassifier& model, const Dataset& data, const SpectralOptions& options = {});

}  // namespace aegis
