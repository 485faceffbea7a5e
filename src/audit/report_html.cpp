#include "aegis/audit/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace aegis {

namespace {

using nlohmann::json;

// Series colours of every chart (the report's rendering test looks for them).
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#9467bd", "#17becf"};

const char* severity_colour(const std::string& s) {
  if (s == "critical") return "#7a0000";
  if (s == "high") return "#c92a2a";
  if (s == "medium") return "#e6a700";
  if (s == "low") return "#2b8a3e";
  return "#868e96";
}

std::string num(double v) {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.4g}", v);
}

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

/// "nice" upper bound for an axis.
double nice_max(double v) {
  if (v <= 0) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v - 1e-12) return m * p;
  return 10 * p;
}

constexpr int kW = 600, kH = 320, kL = 56, kR = 140, kT = 16, kB = 48;

void axes(std::ostringstream& s, double xmax, double ymax, const std::string& xl, const std::string& yl, bool xticks) {
  const int pw = kW - kL - kR, ph = kH - kT - kB;
  s << fmt::format(
      "<rect x='{}' y='{}' width='{}' height='{}' fill='#ffffff' "
      "stroke='#444' stroke-width='1'/>",
      kL, kT, pw, ph);
  for (int i = 0; i <= 5; ++i) {
    double y = kT + ph - ph * i / 5.0;
    s << fmt::format("<line x1='{}' y1='{:.1f}' x2='{}' y2='{:.1f}' stroke='#e0e0e0'/>", kL, y, kL + pw, y);
    s << fmt::format("<text x='{}' y='{:.1f}' font-size='11' text-anchor='end'>{}</text>", kL - 6, y + 4,
                     num(ymax * i / 5.0));
    if (xticks) {
      double x = kL + pw * i / 5.0;
      s << fmt::format(
          "<text x='{:.1f}' y='{}' font-size='11' "
          "text-anchor='middle'>{}</text>",
          x, kT + ph + 16, num(xmax * i / 5.0));
    }
  }
  s << fmt::format("<text x='{}' y='{}' font-size='12' text-anchor='middle'>{}</text>", kL + pw / 2, kH - 8,
                   html_escape(xl));
  s << fmt::format(
      "<text x='14' y='{}' font-size='12' text-anchor='middle' "
      "transform='rotate(-90 14 {})'>{}</text>",
      kT + ph / 2, kT + ph / 2, html_escape(yl));
}

std::string line_chart(const json& c) {
  const int pw = kW - kL - kR, ph = kH - kT - kB;
  double xmax = 0, ymax = 1;
  for (const auto& s : c["series"])
    for (const auto& p : s["points"]) {
      xmax = std::max(xmax, p[0].get<double>());
      ymax = std::max(ymax, p[1].get<double>());
    }
  xmax = nice_max(xmax);
  ymax = nice_max(ymax);
  std::ostringstream s;
  s << fmt::format(
      "<figure><figcaption>{}</figcaption><svg class='chart' "
      "width='{}' height='{}' viewBox='0 0 {} {}' "
      "role='img'>",
      html_escape(str(c, "title")), kW, kH, kW, kH);
  axes(s, xmax, ymax, str(c, "x_label"), str(c, "y_label"), true);
  auto X = [&](double x) { return kL + pw * x / xmax; };
  auto Y = [&](double y) { return kT + ph - ph * y / ymax; };
  if (c.value("diagonal", false))
    s << fmt::format(
        "<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' "
        "stroke='#999' stroke-dasharray='4 4'/>",
        X(0), Y(0), X(std::min(xmax, ymax)), Y(std::min(xmax, ymax)));
  int k = 0;
  for (const auto& ser : c["series"]) {
    const char* col = kPalette[k % 4];
    std::string pts;
    for (const auto& p : ser["points"])
      pts += fmt::format("{:.1f},{:.1f} ", X(p[0].get<double>()), Y(p[1].get<double>()));
    s << fmt::format("<polyline fill='none' stroke='{}' stroke-width='3' points='{}'/>", col, pts);
    for (const auto& p : ser["points"])
      s << fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='4' fill='{}'/>", X(p[0].get<double>()),
                       Y(p[1].get<double>()), col);
    s << fmt::format(
        "<rect x='{}' y='{}' width='14' height='14' "
        "fill='{}'/><text x='{}' y='{}' font-size='12'>{}</text>",
        kW - kR + 12, kT + 8 + 20 * k, col, kW - kR + 32, kT + 19 + 20 * k, html_escape(str(ser, "name")));
    ++k;
  }
  s << "</svg></figure>";
  return s.str();
}

std::string bar_chart(const json& c) {
  const int ph = kH - kT - kB;
  const auto& cats = c["categories"];
  const auto& series = c["series"];
  const int n = int(cats.size()), m = std::max<int>(1, int(series.size()));
  const int pw = std::max(kW - kL - kR, n * (m * 14 + 12));
  const int w = pw + kL + kR;
  double ymax = 1;
  for (const auto& s : series)
    for (const auto& v : s["values"]) ymax = std::max(ymax, v.get<double>());
  ymax = nice_max(ymax);
  std::ostringstream s;
  s << fmt::format(
      "<figure><figcaption>{}</figcaption><svg class='chart' "
      "width='{}' height='{}' viewBox='0 0 {} {}' "
      "role='img'>",
      html_escape(str(c, "title")), w, kH + 40, w, kH + 40);
  s << fmt::format(
      "<rect x='{}' y='{}' width='{}' height='{}' fill='#ffffff' "
      "stroke='#444'/>",
      kL, kT, pw, ph);
  for (int i = 0; i <= 5; ++i) {
    double y = kT + ph - ph * i / 5.0;
    s << fmt::format("<line x1='{}' y1='{:.1f}' x2='{}' y2='{:.1f}' stroke='#e0e0e0'/>", kL, y, kL + pw, y);
    s << fmt::format("<text x='{}' y='{:.1f}' font-size='11' text-anchor='end'>{}</text>", kL - 6, y + 4,
                     num(ymax * i / 5.0));
  }
  const double slot = double(pw) / std::max(1, n), bw = std::min(28.0, (slot - 8) / m);
  for (int i = 0; i < n; ++i) {
    double x0 = kL + slot * i + (slot - bw * m) / 2;
    for (int j = 0; j < int(series.size()); ++j) {
      double v = series[j]["values"][i].get<double>();
      double h = ph * v / ymax;
      s << fmt::format(
          "<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' "
          "height='{:.1f}' fill='{}'><title>{}: {}</title></rect>",
          x0 + bw * j, kT + ph - h, bw - 1, h, kPalette[j % 4], html_escape(str(series[j], "name")), num(v));
    }
    double xc = kL + slot * i + slot / 2;
    s << fmt::format(
        "<text x='{:.1f}' y='{}' font-size='11' text-anchor='end' "
        "transform='rotate(-35 {:.1f} {})'>{}</text>",
        xc, kT + ph + 14, xc, kT + ph + 14, html_escape(cats[i].get<std::string>()));
  }
  for (int j = 0; j < int(series.size()); ++j)
    s << fmt::format(
        "<rect x='{}' y='{}' width='14' height='14' "
        "fill='{}'/><text x='{}' y='{}' font-size='12'>{}</text>",
        kL + pw + 12, kT + 8 + 20 * j, kPalette[j % 4], kL + pw + 32, kT + 19 + 20 * j,
        html_escape(str(series[j], "name")));
  s << "</svg></figure>";
  return s.str();
}

/// Evidence without the bulky images, as readable JSON.
std::string evidence_text(const json& e) {
  std::string t = e.dump(1);
  if (t.size() > 4000) t = t.substr(0, 4000) + "\n...";
  return t;
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string render_html_report(const json& r) {
  std::ostringstream h;
  const json& verdict = r["verdict"];
  const std::string worst = str(verdict, "worst_severity");
  h << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
       "<meta http-equiv='Content-Security-Policy' content=\"default-src "
       "'none'; img-src data:; style-src 'unsafe-inline'\">"
       "<title>aegis audit report</title><style>"
       "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}"
       "h1{margin-bottom:4px}h2{border-bottom:1px solid "
       "#ccc;padding-bottom:4px;margin-top:32px}"
       ".verdict{padding:16px;border-radius:6px;color:#fff;font-size:18px}"
       ".badge{display:inline-block;padding:2px "
       "8px;border-radius:4px;color:#fff;font-size:12px;font-weight:bold;"
       "text-transform:uppercase;min-width:64px;text-align:center}"
       "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px "
       "8px;text-align:left;vertical-align:top}"
       ".finding{border:1px solid #ddd;border-radius:6px;padding:8px "
       "12px;margin:10px 0}"
       "code,pre{background:#f4f4f4;padding:2px "
       "4px;font-size:12px}pre{padding:8px;overflow-x:auto;white-space:pre-"
       "wrap}"
       "figure{margin:12px 0}figcaption{font-weight:bold;margin-bottom:4px}"
       ".grid{display:flex;flex-wrap:wrap;gap:12px}.ex{border:1px solid "
       "#ddd;padding:6px;font-size:12px;text-align:center}"
       ".ex "
       "img{image-rendering:pixelated;width:84px;height:84px;margin:2px}.meta "
       "td:first-child{font-weight:bold}"
       "</style></head><body>\n";
  h << "<h1>aegis audit report</h1>\n";
  h << fmt::format("<div class='verdict' style='background:{}'>{}</div>\n", severity_colour(worst),
                   html_escape(str(verdict, "summary")));
  h << "<p>";
  for (const char* s : {"critical", "high", "medium", "low", "info"})
    h << fmt::format("<span class='badge' style='background:{}'>{} {}</span> ", severity_colour(s), s,
                     verdict["counts"].value(s, 0));
  h << "</p><p><em>" << html_escape(str(verdict, "caveat")) << "</em></p>\n";

  h << "<table class='meta'>";
  auto row = [&](const std::string& k, const std::string& v) {
    h << "<tr><td>" << html_escape(k) << "</td><td><code>" << html_escape(v) << "</code></td></tr>";
  };
  row("model", str(r["model"], "path"));
  row("model SHA-256", str(r["model"], "sha256"));
  row("data",
      str(r["data"], "source") + fmt::format(" ({} of {} samples audited)", r["data"].value("samples_audited", 0),
                                             r["data"].value("samples_total", 0)));
  row("data fingerprint", str(r["data"], "fingerprint"));
  row("suite", str(r["suite"], "name"));
  row("seed", std::to_string(r.value("seed", uint64_t{0})));
  row("aegis version", str(r, "aegis_version"));
  row("report schema", fmt::format("{} v{}", str(r, "schema"), r.value("schema_version", 0)));
  if (r.contains("run")) row("started", str(r["run"], "started"));
  h << "</table>\n";

  h << "<h2>Findings</h2>\n";
  for (const auto& f : r["findings"]) {
    std::string sev = str(f, "severity");
    h << "<div class='finding'>";
    h << fmt::format(
        "<span class='badge' style='background:{}'>{}</span> "
        "<strong>{}</strong> <small>({})</small>",
        severity_colour(sev), sev, html_escape(str(f, "title")), html_escape(str(f, "id")));
    h << "<p>" << html_escape(str(f, "summary")) << "</p>";
    const json& t = f["thresholds"];
    std::string limits;
    for (const char* k : {"critical", "high", "medium", "low"})
      if (t.contains(k) && t[k].is_number())
        limits += fmt::format("{}{} {}", limits.empty() ? "" : ", ", k, num(t[k].get<double>()));
    h << fmt::format("<p>{}: <strong>{}</strong> (thresholds, {}: {})</p>", html_escape(str(f, "metric")),
                     num(f.value("value", 0.0)),
                     t.value("higher_is_worse", true) ? "higher is worse" : "lower is worse",
                     html_escape(limits.empty() ? "none" : limits));
    h << fmt::format(
        "<p>MITRE ATLAS <strong>{}</strong> {} &middot; OWASP ML Top 10 "
        "<strong>{}</strong> {}</p>",
        html_escape(str(f, "atlas")), html_escape(str(f, "atlas_name")), html_escape(str(f, "owasp")),
        html_escape(str(f, "owasp_name")));
    h << "<p>Mitigation: <code>" << html_escape(str(f, "mitigation")) << "</code></p>";
    h << "<details><summary>evidence</summary><pre>" << html_escape(evidence_text(f["evidence"])) << "</pre></details>";
    h << "</div>\n";
  }

  h << "<h2>Checks</h2>\n";
  for (const auto& c : r["checks"]) {
    h << fmt::format("<h3>{} <small>({}, {})</small></h3>", html_escape(str(c, "id")), html_escape(str(c, "check")),
                     html_escape(str(c, "status")));
    if (!str(c, "note").empty()) h << "<p>" << html_escape(str(c, "note")) << "</p>";
    if (c.contains("headline") && !c["headline"].empty()) {
      h << "<table><tr><th>metric</th><th>value</th></tr>";
      for (const auto& m : c["headline"])
        h << fmt::format("<tr><td>{}</td><td>{}</td></tr>", html_escape(str(m, "name")), num(m.value("value", 0.0)));
      h << "</table>";
    }
    const json& a = c["artefacts"];
    if (a.contains("curves"))
      for (const auto& chart : a["curves"]) h << line_chart(chart);
    if (a.contains("bars"))
      for (const auto& chart : a["bars"]) h << bar_chart(chart);
    if (a.contains("examples") && !a["examples"].empty()) {
      h << "<figure><figcaption>Adversarial examples (clean | "
           "adversarial)</figcaption><div class='grid'>";
      for (const auto& e : a["examples"])
        h << fmt::format(
            "<div class='ex'><img alt='clean sample {}' "
            "src='data:image/png;base64,{}'>"
            "<img alt='adversarial sample {}' "
            "src='data:image/png;base64,{}'><br>#{}: {} &rarr; {}<br>"
            "L2 {} &middot; Linf {}</div>",
            e.value("index", 0), str(e, "clean_png"), e.value("index", 0), str(e, "adv_png"), e.value("index", 0),
            html_escape(str(e, "label_name")), html_escape(str(e, "adv_pred_name")), num(e.value("l2", 0.0)),
            num(e.value("linf", 0.0)));
      h << "</div></figure>";
    }
    if (a.contains("explanations") && !a["explanations"].empty()) {
      h << "<figure><figcaption>Explanations of clean and perturbed samples (clean input | its map | perturbed "
           "input | its map; top-k overlap: the share of the clean map's top features still on top)"
           "</figcaption><div class='grid'>";
      for (const auto& e : a["explanations"])
        h << fmt::format(
            "<div class='ex'><img alt='clean sample {0}' src='data:image/png;base64,{1}'>"
            "<img alt='map of clean sample {0}' src='data:image/png;base64,{2}'>"
            "<img alt='perturbed sample {0}' src='data:image/png;base64,{3}'>"
            "<img alt='map of perturbed sample {0}' src='data:image/png;base64,{4}'><br>{5}<br>#{0}: {6} &rarr; {7}"
            "<br>top-k overlap {8} &middot; Linf {9}</div>",
            e.value("index", 0), str(e, "clean_png"), str(e, "clean_map_png"), str(e, "adv_png"),
            str(e, "adv_map_png"), html_escape(str(e, "kind")), html_escape(str(e, "label_name")),
            html_escape(str(e, "adv_pred_name")), num(e.value("topk_overlap", 0.0)), num(e.value("linf", 0.0)));
      h << "</div></figure>";
    }
    h << "<details><summary>parameters and metrics</summary><pre>"
      << html_escape(json({{"params", c["params"]}, {"metrics", c["metrics"]}}).dump(1)) << "</pre></details>\n";
  }

  h << "<h2>Reproduce</h2><pre>" << html_escape(str(r, "reproduce")) << "</pre>\n";
  h << "</body></html>\n";
  return h.str();
}

}  // namespace aegis
