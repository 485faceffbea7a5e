#include "aegis/attacks/evasion/square.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

namespace {

using torch::indexing::Slice;

/// Margin loss to *minimise*: z_y - max_{j!=y} z_j (untargeted), max_{j!=t} z_j - z_t (targeted).
torch::Tensor margin(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& t) {
  const torch::Tensor& cls = t.defined() ? t : y;
  torch::Tensor own = logits.gather(1, cls.unsqueeze(1)).squeeze(1);
  torch::Tensor others = logits.scatter(1, cls.unsqueeze(1), -std::numeric_limits<float>::infinity());
  torch::Tensor best_other = std::get<0>(others.max(1));
  return t.defined() ? best_other - own : own - best_other;
}

torch::Tensor l2_of(const torch::Tensor& t) { return t.pow(2).sum({1, 2, 3}, true).sqrt(); }

/// The reference's "eta_rectangles": nested rectangles of mass 1/(k+1)^2, unit L2 norm.
torch::Tensor eta_rectangles(int64_t x, int64_t y) {
  torch::Tensor delta = torch::zeros({x, y});
  int64_t xc = x / 2 + 1, yc = y / 2 + 1;
  int64_t c0 = xc - 1, c1 = yc - 1;
  for (int64_t k = 0; k < std::max(xc, yc); ++k) {
    int64_t r0 = std::max<int64_t>(c0, 0), r1 = std::min(c0 + 2 * k + 1, x);
    int64_t q0 = std::max<int64_t>(c1, 0), q1 = std::min(c1 + 2 * k + 1, y);
    if (r1 > r0 && q1 > q0) delta.index({Slice(r0, r1), Slice(q0, q1)}) += 1.0 / double((k + 1) * (k + 1));
    --c0;
    --c1;
  }
  return delta / delta.pow(2).sum().sqrt().clamp_min(1e-12);
}

/// Pseudo-Gaussian s x s perturbation: + mass in one half, - in the other, random orientation.
torch::Tensor meta_pseudo_gaussian(int64_t s, at::Generator& gen) {
  torch::Tensor delta = torch::zeros({s, s});
  if (s / 2 > 0) delta.index_put_({Slice(0, s / 2)}, eta_rectangles(s / 2, s));
  delta.index_put_({Slice(s / 2, s)}, -eta_rectangles(s - s / 2, s));
  delta = delta / delta.pow(2).sum().sqrt().clamp_min(1e-12);
  if (torch::rand({1}, gen).item<double>() > 0.5) delta = delta.t().contiguous();
  return delta;
}

torch::Tensor random_signs(std::vector<int64_t> shape, at::Generator& gen) {
  return torch::randint(0, 2, shape, gen, torch::kFloat) * 2 - 1;
}

int64_t random_int(int64_t lo, int64_t hi_exclusive, at::Generator& gen) {
  if (hi_exclusive <= lo + 1) return lo;
  return torch::randint(lo, hi_exclusive, {1}, gen, torch::kLong).item<int64_t>();
}

}  // namespace

double square_p_selection(double p_init, int64_t it, int64_t queries) {
  const int64_t i = int64_t(double(it) / double(std::max<int64_t>(queries, 1)) * 10000.0);
  if (i > 10 && i <= 50) return p_init / 2;
  if (i > 50 && i <= 200) return p_init / 4;
  if (i > 200 && i <= 500) return p_init / 8;
  if (i > 500 && i <= 1000) return p_init / 16;
  if (i > 1000 && i <= 2000) return p_init / 32;
  if (i > 2000 && i <= 4000) return p_init / 64;
  if (i > 4000 && i <= 6000) return p_init / 128;
  if (i > 6000 && i <= 8000) return p_init / 256;
  if (i > 8000) return p_init / 512;
  return p_init;
}

Square::Square(SquareOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.eps_ > 0, InvalidArgument, "square: eps must be > 0, got " << o_.eps_);
  AEGIS_CHECK(o_.norm_ != Norm::L1, InvalidArgument, "square: norm must be linf or l2");
  AEGIS_CHECK(o_.queries_ >= 1, InvalidArgument, "square: queries must be >= 1, got " << o_.queries_);
  AEGIS_CHECK(o_.p_init_ > 0 && o_.p_init_ <= 1, InvalidArgument,
              "square: p_init must be in (0, 1], got " << o_.p_init_);
  AEGIS_CHECK(o_.restarts_ >= 1, InvalidArgument, "square: restarts must be >= 1");
}

std::unique_ptr<Attack> Square::from_json(const nlohmann::json& params) {
  SquareOptions o(0.1);
  ParamReader r(params, "square");
  r.get("eps", o.eps_);
  r.get_norm("norm", o.norm_);
  r.get("queries", o.queries_);
  r.get("p_init", o.p_init_);
  r.get("restarts", o.restarts_);
  r.get("early_stop", o.early_stop_);
  r.get_target_mode("targeted", o.target_mode_);
  r.get("seed", o.seed_);
  r.finish();
  return std::make_unique<Square>(o);
}

nlohmann::json Square::options_json() const {
  return {{"eps", o_.eps_},
          {"norm", norm_name(o_.norm_)},
          {"queries", o_.queries_},
          {"p_init", o_.p_init_},
          {"restarts", o_.restarts_},
          {"early_stop", o_.early_stop_},
          {"targeted", target_mode_name(o_.target_mode_)},
          {"seed", o_.seed_}};
}

torch::Tensor Square::attack(Classifier& model, const torch::Tensor& x_in, const torch::Tensor& y,
                             const torch::Tensor& targets, int64_t& iterations) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max, eps = o_.eps_;
  const auto sample = model.meta().input_shape;
  int64_t c, h, w;
  if (sample.size() == 3) {
    c = sample[0], h = sample[1], w = sample[2];
  } else {
    AEGIS_CHECK(sample.size() == 1 && o_.norm_ == Norm::Linf, Unsupported,
                "square: needs image inputs [C, H, W] (or flat features for linf); the model takes "
                    << sample.size() << "-dimensional samples");
    c = 1, h = 1, w = sample[0];
  }
  AEGIS_CHECK(o_.norm_ == Norm::Linf || (h >= 5 && w >= 5), Unsupported, "square: l2 needs images of at least 5x5");
  const int64_t n = x_in.size(0);
  const int64_t features = c * h * w;
  torch::Tensor x = x_in.reshape({n, c, h, w});
  auto gen = make_generator(o_.seed_, "square");
  std::vector<int64_t> sample_shape = x_in.sizes().vec();
  auto query = [&](const torch::Tensor& xa) {
    sample_shape[0] = xa.size(0);
    return model.logits(xa.reshape(sample_shape));
  };

  torch::Tensor best = x.clone();
  torch::Tensor found = torch::zeros({n}, torch::kBool);
  torch::Tensor rows = torch::arange(h, torch::kLong).view({1, 1, h, 1});
  torch::Tensor cols = torch::arange(w, torch::kLong).view({1, 1, 1, w});

  for (int64_t restart = 0; restart < o_.restarts_; ++restart) {
    torch::Tensor idx = (~found).nonzero().flatten();
    if (idx.numel() == 0) break;
    torch::Tensor xs = x.index_select(0, idx), ys = y.index_select(0, idx);
    torch::Tensor ts = targets.defined() ? targets.index_select(0, idx) : torch::Tensor();
    const int64_t m = idx.size(0);

    torch::Tensor xb;  // best point so far per active sample
    if (o_.norm_ == Norm::Linf) {
      xb = (xs + eps * random_signs({m, c, 1, w}, gen)).clamp(lo, hi);
    } else {
      torch::Tensor delta = torch::zeros_like(xs);
      const int64_t s = h / 5, sp = (h - s * 5) / 2;
      for (int64_t vh = sp; vh + s <= h && vh < sp + 5 * s; vh += s)
        for (int64_t vw = sp; vw + s <= w && vw < sp + 5 * s; vw += s)
          delta.index({Slice(), Slice(), Slice(vh, vh + s), Slice(vw, vw + s)}) +=
              meta_pseudo_gaussian(s, gen).view({1, 1, s, s}) * random_signs({m, c, 1, 1}, gen);
      xb = (xs + delta / l2_of(delta).clamp_min(1e-12) * eps).clamp(lo, hi);
    }
    torch::Tensor logits = query(xb);
    torch::Tensor mmin = margin(logits, ys, ts);

    auto record = [&](const torch::Tensor& succ) {
      if (!succ.any().item<bool>()) return;
      torch::Tensor s = succ.nonzero().flatten();
      torch::Tensor gi = idx.index_select(0, s);
      best.index_copy_(0, gi, xb.index_select(0, s));
      found.index_fill_(0, gi, true);
      torch::Tensor keep = (~succ).nonzero().flatten();
      for (torch::Tensor* t : {&idx, &xs, &ys, &xb, &mmin}) *t = t->index_select(0, keep);
      if (ts.defined()) ts = ts.index_select(0, keep);
    };
    auto succeeded = [&](const torch::Tensor& lg, const torch::Tensor& yy, const torch::Tensor& tt) {
      torch::Tensor pred = lg.argmax(1);
      return tt.defined() ? pred == tt : pred != yy;
    };
    // A sample broken by the initial point needs no more queries (the
    // invariants need no early-stop flag here: a success is never undone).
    record(succeeded(logits, ys, ts));

    for (int64_t it = 0; it + 1 < o_.queries_ && idx.numel() > 0; ++it) {
      iterations = std::max(iterations, it + 1);
      const int64_t k = idx.size(0);
      const double p = square_p_selection(o_.p_init_, it, o_.queries_);
      torch::Tensor xn;
      if (o_.norm_ == Norm::Linf) {
        int64_t sh, sw;
        if (h == 1) {
          sh = 1;
          sw = std::clamp<int64_t>(int64_t(std::llround(p * double(w))), 1, w);
        } else {
          int64_t s = std::max<int64_t>(int64_t(std::llround(std::sqrt(p * double(features) / double(c)))), 1);
          sh = sw = std::min({s, h - 1, w - 1});
        }
        torch::Tensor vh = torch::randint(0, h - sh + 1, {k, 1, 1, 1}, gen, torch::kLong);
        torch::Tensor vw = torch::randint(0, w - sw + 1, {k, 1, 1, 1}, gen, torch::kLong);
        torch::Tensor mask = (rows >= vh) & (rows < vh + sh) & (cols >= vw) & (cols < vw + sw);
        torch::Tensor corner = (xs + eps * random_signs({k, c, 1, 1}, gen)).clamp(lo, hi);
        xn = torch::where(mask, corner, xb);
      } else {
        int64_t s = std::max<int64_t>(int64_t(std::llround(std::sqrt(p * double(features) / double(c)))), 3);
        if (s % 2 == 0) ++s;
        s = std::min(s, h % 2 ? h : h - 1);
        s = std::min(s, w % 2 ? w : w - 1);
        const int64_t vh = random_int(0, h - s + 1, gen), vw = random_int(0, w - s + 1, gen);
        const int64_t vh2 = random_int(0, h - s + 1, gen), vw2 = random_int(0, w - s + 1, gen);
        auto win = [&](int64_t a, int64_t b) {
          return std::vector<at::indexing::TensorIndex>{Slice(), Slice(), Slice(a, a + s), Slice(b, b + s)};
        };
        torch::Tensor delta = xb - xs;
        torch::Tensor mask = torch::zeros_like(xs);
        mask.index_put_(win(vh, vw), 1.0);
        torch::Tensor mask2 = torch::zeros_like(xs);
        mask2.index_put_(win(vh2, vw2), 1.0);
        torch::Tensor norm_win1 = delta.index(win(vh, vw)).pow(2).sum({-2, -1}, true).sqrt();
        torch::Tensor norm_img = l2_of(delta);
        torch::Tensor norm_wins = l2_of(delta * torch::max(mask, mask2));
        torch::Tensor nd = meta_pseudo_gaussian(s, gen).view({1, 1, s, s}) * random_signs({k, c, 1, 1}, gen);
        nd = nd + delta.index(win(vh, vw)) / (norm_win1 + 1e-12);
        nd = nd / nd.pow(2).sum({-2, -1}, true).sqrt().clamp_min(1e-12) *
             ((eps * eps - norm_img.pow(2)).clamp_min(0) / double(c) + norm_wins.pow(2)).sqrt();
        delta.index_put_(win(vh2, vw2), 0.0);
        delta.index_put_(win(vh, vw), nd);
        xn = (xs + delta / l2_of(delta).clamp_min(1e-12) * eps).clamp(lo, hi);
      }
      logits = query(xn);
      torch::Tensor mg = margin(logits, ys, ts);
      torch::Tensor succ = succeeded(logits, ys, ts);
      torch::Tensor upd = (mg < mmin) | succ;
      torch::Tensor uv = upd.view({k, 1, 1, 1});
      xb = torch::where(uv, xn, xb);
      mmin = torch::where(upd, mg, mmin);
      record(succ);
    }
    // Samples never broken keep their lowest-margin point.
    if (idx.numel() > 0) best.index_copy_(0, idx, xb);
  }
  return best.reshape(x_in.sizes());
}

}  // namespace aegis
