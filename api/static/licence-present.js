// The verifier's side of 亮证: the presentation is in the URL's fragment (never sent with the
// page request). The page checks it with a nonce of its own, new for this check, so the
// service accepts the presentation once per verifier nonce and only while it is fresh.
(function () {
  "use strict";
  var verdict = document.getElementById("presentation-verdict");
  var facts = document.getElementById("presentation-facts");

  function text(tag, zh, en) {
    var element = document.createElement(tag);
    element.textContent = zh;
    if (en) {
      var english = document.createElement("span");
      english.className = "en";
      english.textContent = en;
      element.appendChild(english);
    }
    return element;
  }

  function fact(label, value) {
    facts.appendChild(text("dt", label));
    facts.appendChild(text("dd", value));
  }

  function show(report) {
    var ok = report && report.status === "VALID";
    verdict.textContent = "";
    verdict.className = "verdict " + (ok ? "ok" : "bad");
    verdict.setAttribute("data-status", report ? report.status : "INDETERMINATE");
    verdict.appendChild(text("p", ok ? "✓" : "✗"));
    verdict.appendChild(text("p", ok ? "亮证有效" : "亮证无效", ok ? "Valid" : "Not valid"));
    var checks = report && report.signatures && report.signatures[0] ? report.signatures[0].checks : [];
    checks.forEach(function (check) {
      if (check.status !== "PASSED") {
        verdict.appendChild(text("p", check.reason.zh, check.reason.en));
      }
    });
    if (!report) {
      verdict.appendChild(text("p", "暂时无法连接核验服务，请稍后重试", "the verification service cannot be reached"));
    }
    var licence = report && report.licence;
    if (licence && licence.fields) {
      fact("证照类型", licence.type_name);
      fact("颁证单位", licence.issuer.name);
      fact("持证主体", licence.holder.name);
      Object.keys(licence.fields).forEach(function (key) {
        fact(licence.fields[key].label, licence.fields[key].value);
      });
      fact("出示时间", licence.shown_at);
      facts.hidden = false;
    }
  }

  var bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  var nonce = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  fetch(verdict.getAttribute("data-endpoint"), {
    method: "POST", headers: {"Content-Type": "application/json"}, credentials: "omit", cache: "no-store",
    body: JSON.stringify({presentation: location.hash.slice(1), nonce: nonce})
  }).then(function (response) {
    return response.ok ? response.json() : null;
  }).then(show, function () {
    show(null);
  });
}());
