#pragma once
/// Renders an audit report (report.json's content) as one self-contained
/// HTML page: a verdict on top, findings sorted by severity, robustness
/// curves and per-class bars as inline SVG, adversarial examples as inline
/// PNG data URIs, and the command that reproduces the audit. No script, no
/// external reference: the page opens offline and leaks nothing.
///
///   std::string html = render_html_report(report.report);

#include <nlohmann/json.hpp>
#include <string>

namespace aegis {

std::string render_html_report(const nlohmann::json& report);

/// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string html_escape(const std::string& s);

}  // namespace aegis
