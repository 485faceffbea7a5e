#pragma once
/// Clean accuracy of a classifier on a dataset: overall, per class, the
/// confusion matrix and the mean cross-entropy.
///
///   AccuracyReport r = measure_accuracy(*model, test);
///   std::cout << r.accuracy;

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct AccuracyReport {
  int64_t samples = 0;
  double accuracy = 0;
  double loss = 0;  ///< mean cross-entropy
  std::vector<double> per_class_accuracy;       ///< NaN-free: 0 for classes absent from the data
  std::vector<int64_t> per_class_count;
  std::vector<std::vector<int64_t>> confusion;  ///< [true][predicted]
  nlohmann::json to_json(const ModelMeta* meta = nullptr) const;
};

/// Throws ShapeMismatch when the data's sample shape is not the model's, or
/// its labels reach past the model's classes.
AccuracyReport measure_accuracy(Classifier& model, const Dataset& data, int64_t batch_size = 512,
                                bool show_progress = true);

/// Throws ShapeMismatch, naming both shapes, unless `data` fits `meta`.
void check_compatible(const ModelMeta& meta, const Dataset& data);

}  // namespace aegis
