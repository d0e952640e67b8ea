"use strict";
// The page's only script: posts the credentials to <endpoint>/check in an Authorization
// header and shows the JSON answer. Server text only ever goes into textContent.
(function () {
  const form = document.getElementById("login");
  const statusLine = document.getElementById("status");
  const results = document.getElementById("results");
  const button = document.getElementById("submit");
  const checkUrl = location.pathname.replace(/\/+$/, "") + "/check";

  function setStatus(state, text, ok) {
    statusLine.dataset.state = state;
    statusLine.dataset.ok = String(ok !== false && state !== "error");
    statusLine.textContent = text;
  }

  // Basic credentials are base64 of UTF-8 (RFC 7617 charset=UTF-8).
  function basic(address, password) {
    const bytes = new TextEncoder().encode(address + ":" + password);
    let binary = "";
    bytes.forEach(function (b) { binary += String.fromCharCode(b); });
    return "Basic " + btoa(binary);
  }

  function tags(list, items) {
    list.replaceChildren();
    items.forEach(function (item) {
      const li = document.createElement("li");
      li.textContent = item.text;
      if (item.state) { li.className = item.state; }
      list.appendChild(li);
    });
  }

  function section(id, check, items) {
    const node = document.getElementById(id);
    node.classList.remove("ok", "fail");
    node.classList.add(check.ok ? "ok" : "fail");
    node.dataset.ok = String(check.ok);
    node.querySelector(".message").textContent = check.message || "";
    node.querySelector(".detail").textContent = check.detail || "";
    const list = node.querySelector(".tags");
    if (list) { tags(list, items || []); }
    return node;
  }

  function show(report) {
    section("result-imap", report.imap, report.imap.extensions.map(function (e) {
      return { text: e.name, state: e.offered ? "yes" : "no" };
    }));
    const folders = section("result-folders", report.folders);
    const body = folders.querySelector("tbody");
    body.replaceChildren();
    report.folders.list.forEach(function (f) {
      const row = document.createElement("tr");
      row.dataset.folder = f.name;
      [f.name, f.role || "", f.eas_type_name + " (type " + f.eas_type + ")"].forEach(function (text) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    const auth = report.smtp.auth_mechanisms.map(function (m) { return { text: "AUTH " + m }; });
    section("result-smtp", report.smtp, [{ text: "TLS: " + report.smtp.tls }].concat(auth));
    section("result-eas", report.eas, report.eas.versions.map(function (v) { return { text: v }; }));
    section("result-push", report.push, report.push.method ? [{ text: report.push.method }] : []);
    results.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const address = document.getElementById("address").value.trim();
    const password = document.getElementById("password").value;
    results.hidden = true;
    button.disabled = true;
    setStatus("busy", "Checking…");
    fetch(checkUrl, {
      method: "POST",
      headers: { "Authorization": basic(address, password), "Accept": "application/json" },
      cache: "no-store",
      credentials: "omit",
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; },
        function () { return { status: response.status, body: null }; });
    }).then(function (answer) {
      const body = answer.body;
      if (!body) {
        setStatus("error", "The gateway gave an unexpected answer (HTTP " + answer.status + ").");
      } else if (body.error) {
        setStatus("error", body.error.message);
      } else {
        show(body);
        setStatus("done", body.ok ? "Everything works: set up your phone with this address."
          : "Some checks failed: see below.", body.ok);
      }
    }, function () {
      setStatus("error", "The gateway could not be reached. Check your connection and try again.");
    }).finally(function () {
      button.disabled = false;
    });
  });
})();
