// The page of `semid serve`: search → history → two models side by side, the code tree, cold start.
// Plain DOM, no libraries, nothing fetched from outside the server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { history: [], info: null, lists: [[], []], seq: 0 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  for (;;) {
    const res = await fetch(path, opts);
    if (res.status === 503) { await new Promise((r) => setTimeout(r, 1000)); continue; }  // still loading
    const data = await res.json();
    if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
    return data;
  }
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }

function sharedLength(a, b) {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

// codes as chips; the first `shared` of them highlighted
function sidView(sid, shared = 0) {
  const span = el("span", { class: "sid", title: "Semantic ID: codes, then the collision code" });
  sid.forEach((c, i) => span.append(el("span", { class: "code" + (i < shared ? " shared" : "") }, String(c))));
  return span;
}

function itemRow(item, { rank, shared = 0, onclick, extra } = {}) {
  return el("li", { "data-item": item.item_id, onclick, title: item.asin },
    rank !== undefined ? el("span", { class: "rank" }, String(rank)) : null,
    el("span", { class: "title" }, item.title), extra || null, sidView(item.sid, shared));
}

// ---- history ---------------------------------------------------------------------------------
let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 200);
});

async function runSearch() {
  const q = $("search").value.trim();
  const list = $("search-results");
  if (!q) { list.replaceChildren(); return; }
  try {
    const hits = await api(`/search?q=${encodeURIComponent(q)}&limit=15`);
    list.replaceChildren(...hits.map((it) => itemRow(it, { onclick: () => addToHistory(it) })));
    if (!hits.length) list.append(el("li", {}, "no title holds every word"));
    showError(null);
  } catch (err) { showError(err); }
}

function addToHistory(item) {
  state.history.push(item);
  renderHistory();
}

function renderHistory() {
  $("history").replaceChildren(...state.history.map((it, i) => itemRow(it, {
    rank: i + 1, onclick: () => { state.history.splice(i, 1); renderHistory(); } })));
  refresh();
}

$("clear").addEventListener("click", () => { state.history = []; renderHistory(); });

// ---- recommendations -------------------------------------------------------------------------
async function refresh() {
  const seq = ++state.seq;  // a slower answer to an older history never overwrites a newer one
  if (!state.history.length) { [0, 1].forEach((c) => $(`recs-${c}`).replaceChildren()); return; }
  const history = state.history.map((it) => it.item_id);
  try {
    const results = await Promise.all([0, 1].map((c) => $(`model-${c}`).value
      ? api("/recommend", { history, k: 10, model: $(`model-${c}`).value }) : null));
    if (seq !== state.seq) return;
    state.lists = results.map((r) => (r ? r.items : []));
    results.forEach((r, c) => renderColumn(c, r));
    showError(null);
  } catch (err) { showError(err); }
}

function renderColumn(c, result) {
  const list = $(`recs-${c}`);
  if (!result) { list.replaceChildren(); return; }
  const other = new Set(state.lists[1 - c].map((it) => it.item_id));
  const sids = state.history.map((it) => it.sid);
  const score = (it) => it.score === null ? null
    : el("span", { class: "score", title: `${result.score_kind}: the model's score` }, it.score.toPrecision(3));
  list.replaceChildren(...result.items.map((it) => itemRow(it, {
    rank: it.rank,
    shared: Math.max(0, ...sids.map((s) => sharedLength(s, it.sid))),
    extra: el("span", { class: "extras" }, score(it),
      other.has(it.item_id) ? el("span", { class: "both", title: "in both lists" }, "both") : null),
    onclick: () => addToHistory(it),
  })));
}

// ---- the code tree ---------------------------------------------------------------------------
async function treeNode(prefix, container) {
  const data = await api(`/tree?prefix=${prefix.join(",")}`);
  const box = el("div", { class: "children", "data-prefix": prefix.join(",") });
  for (const child of data.children) {
    const path = [...prefix, child.code];
    const label = child.item
      ? [sidView(child.item.sid, path.length), " ", child.item.title]
      : [el("b", {}, `${path.join("-")}`), ` · ${child.count} item${child.count > 1 ? "s" : ""} · `, el("span", { class: "words" }, child.words.join(", "))];
    const node = el("div", { class: "node", "data-testid": "tree-node", "data-path": path.join(",") });
    const button = el("button", { type: "button" }, ...label);
    button.addEventListener("click", async () => {
      if (child.item) { addToHistory(child.item); return; }
      const open = node.querySelector(":scope > .children");
      if (open) { open.remove(); return; }
      try { await treeNode(path, node); } catch (err) { showError(err); }
    });
    node.append(button);
    box.append(node);
  }
  container.append(box);
  return box;
}

// open the tree along `prefix` (used by the cold-start box)
async function openTree(prefix) {
  let container = $("tree");
  for (let n = 1; n <= prefix.length; n++) {
    const node = container.querySelector(`[data-path="${prefix.slice(0, n).join(",")}"]`);
    if (!node) return;
    if (!node.querySelector(":scope > .children")) await treeNode(prefix.slice(0, n), node);
    container = node;
  }
  container.scrollIntoView({ block: "center" });
  container.classList.add("found");
}

// ---- cold start ------------------------------------------------------------------------------
$("cold-assign").addEventListener("click", async () => {
  const text = $("cold-text").value.trim();
  const out = $("cold-result");
  if (!text) { out.textContent = "paste a product's text first"; return; }
  out.textContent = "embedding the text and assigning its ID…";
  try {
    const [rec] = await api("/assign", { items: [text] });
    const verdicts = Object.entries(rec.models).map(([name, v]) =>
      el("li", { class: "verdict " + (v.can_generate ? "yes" : "no") }, `${name}: ${v.can_generate ? "can generate it" : "cannot generate it"} — ${v.why}`));
    const prefix = rec.sid.slice(0, rec.shared_levels);
    out.replaceChildren(
      el("p", {}, "Semantic ID ", el("span", { "data-testid": "cold-sid" }, sidView(rec.sid, rec.shared_levels)),
        ` — shares its first ${rec.shared_levels} code${rec.shared_levels === 1 ? "" : "s"} with catalogue items`
        + (rec.reencoded ? "; a catalogue item holds its own codes, so it takes the nearest free one"
          : rec.same_codes ? `; ${rec.same_codes} item(s) have the same codes, so its collision code is ${rec.same_codes}` : "")),
      el("ul", {}, ...verdicts),
      el("h3", {}, "Nearest catalogue items (text similarity)"),
      el("ol", { class: "items", "data-testid": "cold-nearest" }, ...rec.nearest.map((it) =>
        itemRow(it, { extra: el("span", { class: "rank" }, it.similarity.toFixed(2)), shared: sharedLength(it.sid, rec.sid), onclick: () => addToHistory(it) }))),
      el("h3", {}, `Neighbours in the tree (under ${prefix.join("-") || "the root"}) `,
        el("button", { type: "button", onclick: () => openTree(prefix) }, "show in the tree")),
      el("ol", { class: "items", "data-testid": "cold-neighbours" }, ...rec.neighbours.map((it) =>
        itemRow(it, { shared: sharedLength(it.sid, rec.sid), onclick: () => addToHistory(it) }))));
  } catch (err) { out.textContent = ""; showError(err); }
});

// ---- start -----------------------------------------------------------------------------------
async function start() {
  try {
    const info = await api("/models");
    state.info = info;
    $("run-info").textContent = `${info.dataset} · ${info.items.toLocaleString()} items · IDs ${info.ids} · models: ${info.models.map((m) => m.name).join(", ")}`;
    [0, 1].forEach((c) => {
      const select = $(`model-${c}`);
      select.replaceChildren(...info.models.map((m) => el("option", { value: m.name }, m.name)));
      select.value = info.pair[c] || "";
      select.addEventListener("change", refresh);
    });
    await treeNode([], $("tree"));
    document.body.dataset.ready = "1";  // the browser test waits for this
  } catch (err) { showError(err); }
}
start();
