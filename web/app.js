// bwacct pages: sortable tables and the live refresh of the "now" view. No dependencies.
"use strict";

function cellValue(row, index) {
  const cell = row.cells[index];
  if (!cell) return "";
  const v = cell.getAttribute("data-v");
  return v === null ? cell.textContent.trim() : Number(v);
}

function sortTable(table, index, th) {
  const body = table.tBodies[0];
  if (!body) return;
  const desc = !th.classList.contains("desc");
  for (const h of table.tHead.rows[0].cells) h.classList.remove("asc", "desc");
  th.classList.add(desc ? "desc" : "asc");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index), y = cellValue(b, index);
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return desc ? -c : c;
  });
  for (const r of rows) body.appendChild(r);
}

function makeSortable(root) {
  for (const table of root.querySelectorAll("table.sortable")) {
    if (!table.tHead) continue;
    Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
      th.addEventListener("click", () => sortTable(table, i, th));
    });
  }
}

function liveRefresh() {
  const live = document.getElementById("live");
  if (!live) return;
  const every = Number(live.getAttribute("data-refresh-s")) || 5;
  setInterval(async () => {
    try {
      const res = await fetch(window.location.href, { cache: "no-store" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById("live");
      if (fresh) {
        live.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
        makeSortable(live);
      }
    } catch (e) {
      // the next tick tries again
    }
  }, every * 1000);
}

makeSortable(document);
liveRefresh();
