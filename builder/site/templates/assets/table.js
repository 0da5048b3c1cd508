// Filters and sorts the server-rendered model table. Without JavaScript the table is complete (sorted by
// name) and the NSFW toggle (a CSS checkbox) still works; this adds the text, baseline, style and tag
// filters and the sort buttons in the column headings (aria-sort says the order). The state lives in
// the URL (q, baseline, style, tag, nsfw, sort, dir), so a filtered, sorted table can be linked to.
// Each run announces itself with "hmr:filtered" or "hmr:sorted" ({shown, ms}: event to updated table).
(function () {
  "use strict";
  var table = document.getElementById("models");
  if (!table) return;
  var byId = function (id) { return document.getElementById(id); };
  var q = byId("q"), fb = byId("f-baseline"), fs = byId("f-style"), ft = byId("f-tag");
  var nsfw = byId("show-nsfw"), shown = byId("shown"), body = table.tBodies[0];
  var rows = Array.prototype.map.call(body.rows, function (r, i) {
    return { el: r, i: i, q: r.getAttribute("data-q"), b: r.getAttribute("data-b"), s: r.getAttribute("data-s"),
             t: "|" + r.getAttribute("data-t") + "|", n: r.classList.contains("nsfw") };
  });
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var sortCol = "name", sortDir = 1;

  var params = new URLSearchParams(location.search);
  if (params.get("q")) q.value = params.get("q");
  if (fb && params.get("baseline")) fb.value = params.get("baseline");
  if (fs && params.get("style")) fs.value = params.get("style");
  if (ft && params.get("tag")) ft.value = params.get("tag");
  if (nsfw && params.get("nsfw") === "1") nsfw.checked = true;

  function remember() {
    var p = new URLSearchParams(location.search);
    var set = function (k, v) { if (v) p.set(k, v); else p.delete(k); };
    set("q", q.value); set("baseline", fb && fb.value); set("style", fs && fs.value); set("tag", ft && ft.value);
    set("nsfw", nsfw && nsfw.checked ? "1" : "");
    set("sort", sortCol === "name" ? "" : sortCol); set("dir", sortDir < 0 ? "desc" : "");
    var s = p.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : "") + location.hash);
  }

  function apply(ev) {
    var start = ev && ev.timeStamp ? ev.timeStamp : performance.now();
    var terms = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    var b = fb ? fb.value : "", s = fs ? fs.value : "", t = ft ? "|" + ft.value + "|" : "||";
    var showNsfw = nsfw ? nsfw.checked : true, count = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], ok = (!b || r.b === b) && (!s || r.s === s) && (t === "||" || r.t.indexOf(t) >= 0);
      for (var j = 0; ok && j < terms.length; j++) ok = r.q.indexOf(terms[j]) >= 0;
      if (r.el.hidden === ok) r.el.hidden = !ok;
      if (ok && (showNsfw || !r.n)) count++;
    }
    shown.textContent = count;
    if (ev) remember();
    document.dispatchEvent(new CustomEvent("hmr:filtered", { detail: { shown: count, ms: performance.now() - start } }));
  }

  // sort keys are read once per column: numbers from data-v, text lower-cased; an empty cell sorts last
  var keys = {};
  function keyOf(col) {
    if (keys[col]) return keys[col];
    var th = heads.filter(function (h) { return h.getAttribute("data-col") === col; })[0];
    var idx = heads.indexOf(th), num = th.hasAttribute("data-num");
    return (keys[col] = rows.map(function (r) {
      var cell = r.el.cells[idx];
      if (num) { var v = cell.getAttribute("data-v"); return v === "" ? null : +v; }
      var text = (col === "name" ? cell.firstChild.textContent : cell.textContent).toLowerCase();
      return text === "" ? null : text;
    }));
  }

  function sort(col, dir, ev) {
    var start = ev && ev.timeStamp ? ev.timeStamp : performance.now();
    var k = keyOf(col), order = rows.slice();
    order.sort(function (a, b) {
      var x = k[a.i], y = k[b.i];
      if (x === y) return a.i - b.i;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    var frag = document.createDocumentFragment();
    for (var i = 0; i < order.length; i++) frag.appendChild(order[i].el);
    body.appendChild(frag);
    sortCol = col; sortDir = dir;
    heads.forEach(function (h) {
      if (!h.hasAttribute("data-col")) return;
      if (h.getAttribute("data-col") === col) h.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else h.removeAttribute("aria-sort");
    });
    if (ev) remember();
    document.dispatchEvent(new CustomEvent("hmr:sorted", { detail: { col: col, dir: dir, ms: performance.now() - start } }));
  }

  // a button in each sortable heading: mouse and keyboard (Enter, Space) alike
  heads.forEach(function (th) {
    var col = th.getAttribute("data-col");
    if (!col) return;
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "sort";
    while (th.firstChild) btn.appendChild(th.firstChild);
    th.appendChild(btn);
    btn.addEventListener("click", function (ev) {
      // the first click on a number column shows the largest first
      var dir = col === sortCol ? -sortDir : (th.hasAttribute("data-num") ? -1 : 1);
      sort(col, dir, ev);
    });
  });

  q.addEventListener("input", apply);
  [fb, fs, ft, nsfw].forEach(function (el) { if (el) el.addEventListener("change", apply); });
  byId("filters").hidden = false;
  var wanted = params.get("sort") || "name", dir = params.get("dir") === "desc" ? -1 : 1;
  if ((wanted !== "name" || dir < 0) && heads.some(function (h) { return h.getAttribute("data-col") === wanted; })) {
    sort(wanted, dir);
  }
  apply();
})();
