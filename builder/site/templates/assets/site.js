// The home page's search across every category, and the copy buttons of the model pages. Without
// JavaScript the home page lists the categories (the search form stays hidden) and the model pages show
// their URLs, hashes and snippets as plain selectable text.
(function () {
  "use strict";

  // --- search over index.json: key, name, tags, baseline, category (id and human name) ---------------
  var form = document.getElementById("search-form");
  if (form) {
    var input = document.getElementById("search"), list = document.getElementById("results");
    var status = document.getElementById("search-status"), rows = null, loading = null, LIMIT = 40;
    var titles = {};
    Array.prototype.forEach.call(document.querySelectorAll("[data-cat]"), function (el) {
      titles[el.getAttribute("data-cat")] = el.getAttribute("data-title");
    });
    // punctuation and case do not count: "marx 3b" finds acrastt/Marx-3B-V3
    var norm = function (s) { return (" " + String(s).toLowerCase().replace(/[^a-z0-9]+/g, " ") + " "); };
    var page = function (cat, key) {
      var k = key === "index" ? "index.model" : key;
      return "models/" + encodeURIComponent(cat) + "/" + k.split("/").map(encodeURIComponent).join("/") + ".html";
    };
    var size = function (r) {
      if (r.parameters) { var b = r.parameters / 1e9; return b >= 1 ? +b.toPrecision(3) + "B" : +(r.parameters / 1e6).toPrecision(3) + "M"; }
      if (r.size_on_disk_bytes) return (r.size_on_disk_bytes / 1e9).toFixed(1) + " GB";
      return "";
    };
    var load = function () {
      if (!loading) {
        loading = fetch(form.getAttribute("data-index")).then(function (r) { return r.json(); }).then(function (doc) {
          rows = doc.models.map(function (r) {
            var name = norm(r.name), key = norm(r.key);
            return { r: r, name: name, hay: key + name + norm((r.tags || []).join(" ")) + norm(r.baseline || "") +
                     norm(r.category) + norm(titles[r.category] || "") };
          });
        });
      }
      return loading;
    };
    var el = function (tag, cls, text) {
      var e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text) e.textContent = text;
      return e;
    };
    var run = function () {
      var q = input.value, terms = norm(q).split(" ").filter(Boolean);
      var url = new URL(location.href);
      if (q) url.searchParams.set("q", q); else url.searchParams.delete("q");
      history.replaceState(null, "", url);
      list.textContent = "";
      if (!terms.length) { status.textContent = ""; return; }
      var hits = [];
      for (var i = 0; i < rows.length; i++) {
        var row = rows[i], ok = true, score = 0;
        for (var j = 0; ok && j < terms.length; j++) {
          ok = row.hay.indexOf(terms[j]) >= 0;
          // a name that starts a word with the term ranks first, then one that holds it
          score += row.name.indexOf(" " + terms[j]) >= 0 ? 3 : row.name.indexOf(terms[j]) >= 0 ? 1 : 0;
        }
        if (ok) hits.push({ row: row, score: score, i: i });
      }
      hits.sort(function (a, b) { return b.score - a.score || a.i - b.i; });
      status.textContent = hits.length ? hits.length + " model" + (hits.length === 1 ? "" : "s") +
        (hits.length > LIMIT ? " (first " + LIMIT + " shown)" : "") : "No model matches “" + q + "”.";
      var frag = document.createDocumentFragment();
      hits.slice(0, LIMIT).forEach(function (h) {
        var r = h.row.r, li = el("li"), a = el("a", "", r.name);
        a.href = page(r.category, r.key);
        li.appendChild(a);
        var meta = [titles[r.category] || r.category, r.baseline, size(r)].filter(Boolean).join(" · ");
        li.appendChild(el("span", "muted", " " + meta));
        if (r.nsfw) li.appendChild(el("span", "badge warn", "nsfw"));
        frag.appendChild(li);
      });
      list.appendChild(frag);
      document.dispatchEvent(new CustomEvent("hmr:searched", { detail: { hits: hits.length } }));
    };
    input.addEventListener("input", function () { load().then(run); });
    input.addEventListener("focus", load);
    form.addEventListener("submit", function (e) { e.preventDefault(); load().then(run); });
    form.hidden = false;
    var initial = new URLSearchParams(location.search).get("q");
    if (initial) { input.value = initial; load().then(run); }
  }

  // --- copy buttons: data-copy holds the text, or data-copy-from the id of the element holding it ----
  var copied = function (btn) {
    var label = btn.textContent;
    btn.textContent = "Copied";
    setTimeout(function () { btn.textContent = label; }, 1200);
  };
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy], button[data-copy-from]"), function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var from = btn.getAttribute("data-copy-from");
      var text = from ? document.getElementById(from).textContent : btn.getAttribute("data-copy");
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { copied(btn); });
      }
    });
  });
  // the usage snippet names the record's absolute URL; without a configured site URL the page knows it
  Array.prototype.forEach.call(document.querySelectorAll("[data-record]"), function (code) {
    code.textContent = code.textContent.split(code.getAttribute("data-placeholder"))
      .join(new URL(code.getAttribute("data-record"), location.href).href);
  });
})();
