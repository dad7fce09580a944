// The /v/ page's second verdict. Opened from a licence's QR code, the page's URL carries the
// signed payload in its fragment, which the browser never sends with the page request; this
// asks the service to check it against the registry (POST /api/v1/verify {"qr"}) and shows
// the answer beside the registry's own. Text only (textContent), nothing from elsewhere.
(function () {
  "use strict";
  var section = document.getElementById("qr-verdict");
  if (!section || location.hash.indexOf("#ZZ1:") !== 0) {
    return;
  }
  var HEADLINES = {
    VALID: ["二维码有效，与登记信息一致", "The QR code is genuine and matches the registry"],
    INVALID: ["二维码无效", "The QR code is not valid"],
    INDETERMINATE: ["二维码无法确认", "The QR code cannot be confirmed"]
  };

  function line(parent, tag, zh, en) {
    var element = document.createElement(tag);
    element.textContent = zh;
    var english = document.createElement("span");
    english.className = "en";
    english.textContent = en;
    element.appendChild(english);
    parent.appendChild(element);
  }

  function show(report) {
    var status = report && HEADLINES[report.status] ? report.status : "INDETERMINATE";
    section.className = "qr-verdict " + status.toLowerCase();
    section.setAttribute("data-status", status);
    line(section, "p", HEADLINES[status][0], HEADLINES[status][1]);
    var list = document.createElement("ul");
    var checks = report && report.signatures && report.signatures[0] ? report.signatures[0].checks : [];
    checks.forEach(function (check) {
      if (check.status !== "PASSED" && check.status !== "NOT_APPLICABLE") {
        line(list, "li", check.reason.zh, check.reason.en);
      }
    });
    if (!report) {
      line(list, "li", "暂时无法连接核验服务，请稍后重试", "the verification service cannot be reached: try again later");
    }
    section.appendChild(list);
    section.hidden = false;
  }

  fetch(section.getAttribute("data-endpoint"), {
    method: "POST", headers: {"Content-Type": "application/json"}, credentials: "omit", cache: "no-store",
    body: JSON.stringify({qr: location.href})
  }).then(function (response) {
    return response.ok ? response.json() : null;
  }).then(show, function () {
    show(null);
  });
}());
