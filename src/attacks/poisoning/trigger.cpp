#include "aegis/attacks/poisoning/trigger.h"

#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

Trigger Trigger::patch(int64_t size, std::string position, std::string pattern) {
  Trigger t;
  t.kind = "patch";
  t.size = size;
  t.position = std::move(position);
  t.pattern = std::move(pattern);
  return t;
}

Trigger Trigger::blend(double alpha, std::string pattern, uint64_t seed) {
  Trigger t;
  t.kind = "blend";
  t.alpha = alpha;
  t.pattern = std::move(pattern);
  t.seed = seed;
  return t;
}

namespace {

std::pair<int64_t, int64_t> corner(const Trigger& t, int64_t h, int64_t w) {
  if (t.row >= 0 || t.col >= 0) return {std::max<int64_t>(t.row, 0), std::max<int64_t>(t.col, 0)};
  int64_t top = t.margin, bottom = h - t.margin - t.size, left = t.margin, right = w - t.margin - t.size;
  if (t.position == "top-left") return {top, left};
  if (t.position == "top-right") return {top, right};
  if (t.position == "bottom-left") return {bottom, left};
  return {bottom, right};
}

}  // namespace

void Trigger::validate(const std::vector<int64_t>& s) const {
  AEGIS_CHECK(kind == "patch" || kind == "blend", InvalidArgument,
              "trigger kind must be 'patch' or 'blend', got '" << kind << "'");
  AEGIS_CHECK(pattern == "checker" || pattern == "white" || pattern == "black" || pattern == "random", InvalidArgument,
              "trigger pattern must be checker, white, black or random, got '" << pattern << "'");
  AEGIS_CHECK(s.size() == 3, InvalidArgument,
              "a trigger needs image samples [C, H, W]; these samples have " << s.size() << " dimensions");
  AEGIS_CHECK(clip_max > clip_min, InvalidArgument, "trigger range must have max > min");
  if (kind == "blend") {
    AEGIS_CHECK(alpha > 0 && alpha <= 1, InvalidArgument, "blend alpha must be in (0, 1], got " << alpha);
    return;
  }
  AEGIS_CHECK(
      position == "bottom-right" || position == "bottom-left" || position == "top-right" || position == "top-left",
      InvalidArgument,
      "trigger position must be bottom-right, bottom-left, top-right "
      "or top-left, got '"
          << position << "'");
  AEGIS_CHECK(size >= 1, InvalidArgument, "trigger size must be >= 1, got " << size);
  AEGIS_CHECK(margin >= 0, InvalidArgument, "trigger margin must be >= 0, got " << margin);
  auto [r, c] = corner(*this, s[1], s[2]);
  AEGIS_CHECK(r >= 0 && c >= 0 && r + size <= s[1] && c + size <= s[2], InvalidArgument,
              "a " << size << "x" << size << " trigger at row " << r << ", column " << c << " does not fit a " << s[1]
                   << "x" << s[2] << " image");
}

torch::Tensor Trigger::mask(const std::vector<int64_t>& s) const {
  validate(s);
  if (kind == "blend") return torch::full({s[0], s[1], s[2]}, alpha);
  torch::Tensor m = torch::zeros({s[0], s[1], s[2]});
  auto [r, c] = corner(*this, s[1], s[2]);
  m.narrow(1, r, size).narrow(2, c, size).fill_(1.0);
  return m;
}

torch::Tensor Trigger::pattern_tensor(const std::vector<int64_t>& s) const {
  validate(s);
  torch::Tensor p;
  if (pattern == "white") {
    p = torch::ones({s[0], s[1], s[2]});
  } else if (pattern == "black") {
    p = torch::zeros({s[0], s[1], s[2]});
  } else if (pattern == "random") {
    auto gen = make_generator(seed, "trigger-pattern");
    p = (torch::rand({s[0], s[1], s[2]}, gen) > 0.5).to(torch::kFloat);
  } else {  // checker, anchored at the patch's corner so the patch always starts
            // bright
    auto [r, c] = kind == "patch" ? corner(*this, s[1], s[2]) : std::pair<int64_t, int64_t>{0, 0};
    torch::Tensor i = torch::arange(s[1]).view({-1, 1}) - r, j = torch::arange(s[2]).view({1, -1}) - c;
    p = ((i + j).remainder(2) == 0).to(torch::kFloat).unsqueeze(0).expand({s[0], s[1], s[2]}).contiguous();
  }
  return clip_min + p * (clip_max - clip_min);
}

torch::Tensor Trigger::apply(const torch::Tensor& x) const {
  AEGIS_CHECK(x.dim() == 4, InvalidArgument, "trigger needs a batch [N, C, H, W], got " << x.dim() << " dimensions");
  std::vector<int64_t> s = {x.size(1), x.size(2), x.size(3)};
  torch::Tensor m = mask(s).to(x.device(), x.scalar_type()), p = pattern_tensor(s).to(x.device(), x.scalar_type());
  return x * (1 - m) + p * m;
}

nlohmann::json Trigger::to_json() const {
  nlohmann::json j = {{"kind", kind}, {"pattern", pattern}, {"clip_min", clip_min}, {"clip_max", clip_max}};
  if (kind == "blend") {
    j["alpha"] = alpha;
  } else {
    j["size"] = size;
    j["position"] = position;
    j["margin"] = margin;
    if (row >= 0 || col >= 0) {
      j["row"] = row;
      j["col"] = col;
    }
  }
  if (pattern == "random") j["seed"] = seed;
  return j;
}

Trigger Trigger::from_json(const nlohmann::json& j) {
  AEGIS_CHECK(j.is_object(), CorruptData, "trigger must be a JSON object");
  try {
    Trigger t;
    t.kind = j.value("kind", t.kind);
    t.pattern = j.value("pattern", t.pattern);
    t.clip_min = j.value("clip_min", t.clip_min);
    t.clip_max = j.value("clip_max", t.clip_max);
    t.alpha = j.value("alpha", t.alpha);
    t.size = j.value("size", t.size);
    t.position = j.value("position", t.position);
    t.margin = j.value("margin", t.margin);
    t.row = j.value("row", t.row);
    t.col = j.value("col", t.col);
    t.seed = j.value("seed", t.seed);
    return t;
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "bad trigger record: " << e.what());
  }
}

}  // namespace aegis
