#pragma once
/// Readers and writers of the data formats aegis speaks: IDX (MNIST-style,
/// plain or gzip), CSV (numeric features and a label column, min-max scaled
/// to [0, 1] with the scaling recorded) and NPY (NumPy's array format, for
/// interchange with Python). All parse untrusted bytes: every length and
/// dimension is checked before it is used, and bad input throws CorruptData.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "aegis/core/dataset.h"

namespace aegis {

/// Reads a whole file, transparently gunzipping ".gz" (or gzip magic).
/// `max_bytes` bounds the decompressed size (zip-bomb guard). Files encrypted
/// by `aegis encrypt` are decrypted with `key_file`, else $AEGIS_KEY_FILE or
/// $AEGIS_KEY (PermissionDenied when there is no key).
std::string read_file_bytes(const std::string& path, uint64_t max_bytes = uint64_t{8} << 30,
                            const std::string& key_file = "");

/// Parses IDX bytes into a tensor of the stored type (uint8 -> kUInt8, etc.).
torch::Tensor parse_idx(const std::string& bytes, const std::string& what = "IDX data");
/// Images (uint8, scaled to [0, 1], shaped [N, 1, H, W]) and labels from two IDX files.
Dataset load_idx(const std::string& images_path, const std::string& labels_path);

/// Parses NPY bytes (v1/v2/v3 headers; float32/float64/uint8/int32/int64, C order).
torch::Tensor parse_npy(const std::string& bytes, const std::string& what = "NPY data");
/// Writes a tensor (float32, uint8, int64 or int32) as NPY.
void save_npy(const torch::Tensor& t, const std::string& path);
/// x from one NPY (uint8 images scaled to [0, 1]), integer labels from another.
Dataset load_npy(const std::string& x_path, const std::string& y_path);

/// CSV with a header row; every column but the label must be numeric.
/// Features are min-max scaled to [0, 1]; the per-feature min and max are
/// recorded in Dataset::preprocessing. Labels may be integers or strings
/// (strings become class names, sorted).
Dataset load_csv(const std::string& path, const std::string& label_column = "label");

}  // namespace aegis
