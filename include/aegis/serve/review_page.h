#pragma once
/// The review page the gateway serves to a person who decides on flagged
/// requests: `GET /v1/review` from a browser (Accept: text/html) answers this
/// static page and `GET /v1/review/app.js` its script. The page holds no data
/// and needs no key to load; it asks for an admin key, keeps it in the tab's
/// sessionStorage (never a cookie, never the URL) and calls the JSON API with
/// `Authorization: Bearer`: `GET /v1/review` for the pending items (each with
/// its input, the attribution map of the model's review method and the
/// detector's or monitor's reason) and `POST /v1/review/{id}` for a confirm or
/// dismiss, which the gateway writes to its audit log. Everything from a
/// request is shown as text or drawn on a canvas, never parsed as HTML, and
/// the headers (review_page_headers) forbid any other script, framing and
/// form posts.

#include <map>
#include <string>

namespace aegis::serve {

const std::string& review_page_html();
const std::string& review_page_script();
/// Content-Security-Policy and the other headers both answers carry.
const std::map<std::string, std::string>& review_page_headers();

}  // namespace aegis::serve
