// entitylabel review page. All text from the data (captions, phrases, ids) goes into the page through
// textContent, never innerHTML: captions are model output and must not be able to inject markup.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var THUMBS = null; // parsed on first render; only the current page gets <img> elements
  var KIND_TITLE = { ok: "entity", neg: "negated", hedge: "hedged", rej: "rejected" };
  var NO_LABEL = "\u0000none";
  var state = { entity: "", split: "", q: "", page: 0 };
  var filtered = D.pairs;
  var haystacks = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function thumbs() {
    if (!THUMBS) THUMBS = JSON.parse($("report-thumbs").textContent);
    return THUMBS;
  }

  // ---- header -------------------------------------------------------------------------------------
  function renderHeader() {
    var s = D.summary;
    $("title").textContent = D.title;
    document.title = D.title;
    if (D.notice) { $("notice").textContent = D.notice; $("notice").hidden = false; }
    var items = [
      ["pairs", fmt(s.pairs)],
      ["captions", fmt(s.captions) + (s.failedCaptions ? " (" + fmt(s.failedCaptions) + " failed)" : "") +
        (s.truncatedCaptions ? " (" + fmt(s.truncatedCaptions) + " truncated)" : "")],
      ["sources", Object.keys(s.sources).join(", ") || "none"],
      ["labels", fmt(D.labels.length) + " entities · " + fmt(s.pairsWithLabels) + " pairs labelled"],
      ["vocabulary", s.vocabVersion ? ("v" + s.vocabVersion + " · " + s.vocabSha256.slice(0, 12)) : (s.vocabSha256.slice(0, 12) || "n/a")],
      ["highlighting", s.spans],
    ];
    if (s.expected) items.push(["expected (calibrated)", s.expected]);
    if (s.droppedLabels.length) items.push(["dropped (too rare)", s.droppedLabels.join(", ")]);
    if (D.fused) items.push(["fused images", D.fused]);
    items.forEach(function (kv) {
      var d = el("div");
      d.appendChild(el("dt", null, kv[0]));
      d.appendChild(el("dd", null, kv[1]));
      $("summary").appendChild(d);
    });
    $("footer").textContent = D.generator + " · captions are model output, shown as plain text";
  }

  // ---- overview: chart and rejected phrases -------------------------------------------------------
  function renderChart() {
    var box = $("chart");
    box.textContent = "";
    var names = D.labels.slice().sort(function (a, b) {
      return (D.labelCounts[b] - D.labelCounts[a]) || (a < b ? -1 : a > b ? 1 : 0);
    });
    var max = 1;
    names.forEach(function (n) { max = Math.max(max, D.labelCounts[n]); });
    $("chart-note").textContent = names.length ? "pairs per entity · click to filter" : "";
    if (!names.length) { box.appendChild(el("p", "empty", "No labels yet (the extract stage has not run).")); return; }
    names.forEach(function (n) {
      var row = el("button", "bar-row" + (state.entity === n ? " active" : ""));
      row.type = "button";
      row.dataset.entity = n;
      row.title = n + ": " + D.labelCounts[n] + " pairs";
      row.appendChild(el("span", "bar-name", n));
      var track = el("span", "bar-track");
      var fill = el("span", "bar-fill");
      fill.style.display = "block";
      fill.style.width = (100 * D.labelCounts[n] / max).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "bar-count", fmt(D.labelCounts[n])));
      row.addEventListener("click", function () { setFilter({ entity: state.entity === n ? "" : n }); });
      box.appendChild(row);
    });
  }

  // ---- audit of the labels against the dataset's own boxes (extract --annotations) ----------------
  function renderAudit() {
    var a = D.summary.audit;
    if (!a) return;
    $("audit-panel").hidden = false;
    $("audit-note").textContent = "measured against the dataset's own boxes on " + fmt(a.pairs) + " pairs" +
      (a.unaudited.length ? " · unaudited (not covered, not wrong): " + a.unaudited.join(", ") : "");
    var body = $("audit").querySelector("tbody");
    function num(v) { return v === null || v === undefined ? "\u2014" : Number(v).toFixed(3); }
    Object.keys(a.modalities).forEach(function (mod) {
      var b = a.modalities[mod];
      var rows = [[mod + " (" + fmt(b.pairs) + " pairs)", "all audited", b.micro.precision, b.micro.recall, "", ""]];
      Object.keys(b.entities).forEach(function (e) {
        var s = b.entities[e];
        rows.push([mod, e, s.precision, s.recall, fmt(s.gold), fmt(s.predicted)]);
      });
      rows.forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", null, r[0]));
        tr.appendChild(el("td", null, r[1]));
        tr.appendChild(el("td", "num", num(r[2])));
        tr.appendChild(el("td", "num", num(r[3])));
        tr.appendChild(el("td", "num", r[4]));
        tr.appendChild(el("td", "num", r[5]));
        body.appendChild(tr);
      });
    });
  }

  function renderRejected() {
    var body = $("rejected").querySelector("tbody");
    $("rejected-note").textContent = D.rejectedTotal ? ("top " + D.rejected.length + " of " + fmt(D.rejectedTotal)) : "";
    if (!D.rejected.length) {
      var tr = el("tr"); var td = el("td", "empty", "Nothing rejected (or the extract stage has not run).");
      td.colSpan = 4; tr.appendChild(td); body.appendChild(tr); return;
    }
    D.rejected.forEach(function (r) {
      var tr = el("tr");
      var ph = el("td"); ph.appendChild(el("span", "m m-" + r.kind, r.phrase));
      if (r.lemma && r.lemma !== r.phrase) ph.appendChild(el("span", "muted", " (" + r.lemma + ")"));
      tr.appendChild(ph);
      tr.appendChild(el("td", null, r.reason));
      tr.appendChild(el("td", "num", fmt(r.count)));
      var ex = el("td", "ex");
      if (r.pair) {
        var b = el("button", "linkish", r.pair); b.type = "button";
        b.addEventListener("click", function () { setFilter({ entity: "", split: "", q: r.pair }); scrollToPairs(); });
        ex.appendChild(b);
        ex.appendChild(document.createTextNode(" "));
      }
      ex.appendChild(el("span", null, r.caption));
      tr.appendChild(ex);
      body.appendChild(tr);
    });
  }

  // ---- filters ------------------------------------------------------------------------------------
  function option(select, value, text) {
    var o = el("option", null, text); o.value = value; select.appendChild(o);
  }
  function renderControls() {
    var fe = $("f-entity"), fs = $("f-split");
    option(fe, "", "all entities");
    option(fe, NO_LABEL, "(no label)");
    D.labels.forEach(function (n) { option(fe, n, n + " (" + D.labelCounts[n] + ")"); });
    option(fs, "", "all splits");
    D.splits.forEach(function (s) { option(fs, s, s); });
    fe.addEventListener("change", function () { setFilter({ entity: fe.value }); });
    fs.addEventListener("change", function () { setFilter({ split: fs.value }); });
    var timer = null;
    $("f-search").addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { setFilter({ q: $("f-search").value }); }, 150);
    });
    $("f-clear").addEventListener("click", function () { setFilter({ entity: "", split: "", q: "" }); });
    document.addEventListener("keydown", function (ev) {
      if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT")) return;
      if (ev.key === "ArrowRight") goPage(state.page + 1);
      if (ev.key === "ArrowLeft") goPage(state.page - 1);
    });
  }

  function hay(i) {
    if (!haystacks) haystacks = new Array(D.pairs.length);
    if (haystacks[i] === undefined) {
      var p = D.pairs[i], parts = [p.id];
      p.caps.forEach(function (c) { c.seg.forEach(function (s) { parts.push(s[0]); }); });
      haystacks[i] = parts.join(" ").toLowerCase();
    }
    return haystacks[i];
  }
  function hasLabel(p, name) {
    for (var i = 0; i < p.ents.length; i++) if (p.ents[i][2] && p.ents[i][0] === name) return true;
    return false;
  }
  function hasAnyLabel(p) {
    for (var i = 0; i < p.ents.length; i++) if (p.ents[i][2]) return true;
    return false;
  }
  function applyFilters() {
    var q = state.q.trim().toLowerCase();
    filtered = [];
    for (var i = 0; i < D.pairs.length; i++) {
      var p = D.pairs[i];
      if (state.split && p.split !== state.split) continue;
      if (state.entity === NO_LABEL) { if (hasAnyLabel(p)) continue; }
      else if (state.entity && !hasLabel(p, state.entity)) continue;
      if (q && hay(i).indexOf(q) < 0) continue;
      filtered.push(p);
    }
  }
  function setFilter(change) {
    Object.keys(change).forEach(function (k) { state[k] = change[k]; });
    state.page = 0;
    $("f-entity").value = state.entity;
    $("f-split").value = state.split;
    if ($("f-search").value !== state.q) $("f-search").value = state.q;
    applyFilters();
    renderChart();
    renderPage();
  }
  function scrollToPairs() { $("controls").scrollIntoView({ block: "start" }); }

  // ---- pairs --------------------------------------------------------------------------------------
  function pages() { return Math.max(1, Math.ceil(filtered.length / D.pageSize)); }
  function goPage(n) {
    n = Math.max(0, Math.min(pages() - 1, n));
    if (n === state.page) return;
    state.page = n;
    renderPage();
  }
  function renderPager(nav) {
    nav.textContent = "";
    var prev = el("button", "prev", "\u2039 Prev"); prev.type = "button";
    prev.disabled = state.page === 0;
    prev.addEventListener("click", function () { goPage(state.page - 1); });
    var next = el("button", "next", "Next \u203a"); next.type = "button";
    next.disabled = state.page >= pages() - 1;
    next.addEventListener("click", function () { goPage(state.page + 1); });
    var first = state.page * D.pageSize;
    var info = el("span", "page-info", filtered.length
      ? ("Page " + (state.page + 1) + " of " + pages() + " · pairs " + fmt(first + 1) + "\u2013" +
         fmt(Math.min(filtered.length, first + D.pageSize)) + " of " + fmt(filtered.length) +
         (filtered.length !== D.pairs.length ? " (filtered from " + fmt(D.pairs.length) + ")" : ""))
      : "No pair matches the filters.");
    nav.appendChild(prev); nav.appendChild(info); nav.appendChild(next);
  }

  function figure(label, b64, alt) {
    var f = el("figure");
    if (b64) {
      var img = el("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = alt;
      img.src = "data:image/jpeg;base64," + b64;
      f.appendChild(img);
    } else {
      f.appendChild(el("div", "noimg", "no image"));
    }
    f.appendChild(el("figcaption", null, label));
    return f;
  }

  function sourceLabel(c) {
    var s = el("span", "cap-src");
    var parts = c.src.split(":");
    if (parts[0] === "external") {
      s.appendChild(el("b", null, c.mod || "ext"));
      s.appendChild(document.createTextNode(" " + c.src));
    } else {
      s.appendChild(el("b", null, c.mod || parts[0]));
      s.appendChild(document.createTextNode(" " + parts.slice(1).join(" · ")));
    }
    s.title = c.src;
    return s;
  }

  function captionEl(c) {
    var d = el("div", "cap");
    d.appendChild(sourceLabel(c));
    if (c.trunc) d.appendChild(el("span", "badge warn", "truncated"));
    if (c.err) { d.appendChild(el("span", "cap-err", "caption failed: " + c.err)); return d; }
    var text = el("span", "cap-text");
    c.seg.forEach(function (s) {
      if (s.length === 1) { text.appendChild(document.createTextNode(s[0])); return; }
      var m = el("span", "m m-" + s[1], s[0]);
      m.title = s[1] === "ok" ? ("entity: " + s[2]) : (KIND_TITLE[s[1]] + (s[2] ? ": " + s[2] : ""));
      if (s[1] === "ok") m.dataset.entity = s[2];
      text.appendChild(m);
    });
    d.appendChild(text);
    return d;
  }

  function chipEl(e) {
    var c = el("button", "chip " + (e[2] ? "final" : "cand") + (state.entity === e[0] ? " active" : ""));
    c.type = "button";
    c.dataset.entity = e[0];
    c.appendChild(el("span", "name", e[0]));
    if (e[1] !== null) c.appendChild(el("span", "conf", e[1].toFixed(2)));
    c.title = (e[2] ? "label" : "candidate, not kept as a label") +
      (e[1] !== null ? " · confidence " + e[1].toFixed(3) : "") +
      (e[3] && e[3].length ? " · sources: " + e[3].join(", ") : "");
    if (e[2]) c.addEventListener("click", function () { setFilter({ entity: state.entity === e[0] ? "" : e[0] }); });
    return c;
  }

  function pairEl(p) {
    var t = thumbs()[p.id] || [];
    var card = el("article", "pair");
    card.dataset.pairId = p.id;
    card.dataset.split = p.split;
    var head = el("div", "pair-head");
    head.appendChild(el("span", "pair-id", p.id));
    head.appendChild(el("span", "badge split", p.split));
    if (p.size) head.appendChild(el("span", "muted", p.size));
    card.appendChild(head);
    var th = el("div", "thumbs");
    th.appendChild(figure("IR", t[0], "infrared " + p.id));
    th.appendChild(figure("VIS", t[1], "visible " + p.id));
    if (D.fused) th.appendChild(figure("fused", t[2], "fused " + p.id));
    card.appendChild(th);
    var caps = el("div", "caps");
    if (!p.caps.length) caps.appendChild(el("span", "empty", "no captions"));
    p.caps.forEach(function (c) { caps.appendChild(captionEl(c)); });
    card.appendChild(caps);
    var chips = el("div", "chips");
    if (!p.ents.length) chips.appendChild(el("span", "empty", "no entities"));
    p.ents.forEach(function (e) { chips.appendChild(chipEl(e)); });
    card.appendChild(chips);
    return card;
  }

  function renderPage() {
    var box = $("pairs");
    box.textContent = "";
    var first = state.page * D.pageSize;
    var frag = document.createDocumentFragment();
    filtered.slice(first, first + D.pageSize).forEach(function (p) { frag.appendChild(pairEl(p)); });
    box.appendChild(frag);
    renderPager($("pager-top"));
    renderPager($("pager-bottom"));
  }

  document.documentElement.style.setProperty("--thumb", D.thumbSize + "px");
  renderHeader();
  renderControls();
  renderRejected();
  renderAudit();
  applyFilters();
  renderChart();
  renderPage();
  document.body.dataset.ready = "1";
})();
