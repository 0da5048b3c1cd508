// Filters the server-rendered model table as you type. Without JavaScript the table is complete and
// the NSFW toggle (a CSS checkbox) still works; this only adds the text, baseline, style and tag filters.
// Each run announces itself with a "hmr:filtered" event ({shown, ms}: keystroke to updated table).
(function () {
  "use strict";
  var table = document.getElementById("models");
  if (!table) return;
  var byId = function (id) { return document.getElementById(id); };
  var q = byId("q"), fb = byId("f-baseline"), fs = byId("f-style"), ft = byId("f-tag");
  var nsfw = byId("show-nsfw"), shown = byId("shown");
  var rows = Array.prototype.map.call(table.tBodies[0].rows, function (r) {
    return { el: r, q: r.getAttribute("data-q"), b: r.getAttribute("data-b"), s: r.getAttribute("data-s"),
             t: "|" + r.getAttribute("data-t") + "|", n: r.classList.contains("nsfw") };
  });
  var params = new URLSearchParams(location.search);
  if (params.get("q")) q.value = params.get("q");
  if (fb && params.get("baseline")) fb.value = params.get("baseline");
  if (fs && params.get("style")) fs.value = params.get("style");
  if (ft && params.get("tag")) ft.value = params.get("tag");
  if (params.get("nsfw") === "1" && !nsfw.disabled) nsfw.checked = true;

  function apply(ev) {
    var start = ev && ev.timeStamp ? ev.timeStamp : performance.now();
    var terms = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    var b = fb ? fb.value : "", s = fs ? fs.value : "", t = ft ? "|" + ft.value + "|" : "||";
    var showNsfw = nsfw.checked, count = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], ok = (!b || r.b === b) && (!s || r.s === s) && (t === "||" || r.t.indexOf(t) >= 0);
      for (var j = 0; ok && j < terms.length; j++) ok = r.q.indexOf(terms[j]) >= 0;
      if (r.el.hidden === ok) r.el.hidden = !ok;
      if (ok && (showNsfw || !r.n)) count++;
    }
    shown.textContent = count;
    document.dispatchEvent(new CustomEvent("hmr:filtered", { detail: { shown: count, ms: performance.now() - start } }));
  }
  q.addEventListener("input", apply);
  [fb, fs, ft, nsfw].forEach(function (el) { if (el) el.addEventListener("change", apply); });
  byId("filters").hidden = false;
  apply();
})();
