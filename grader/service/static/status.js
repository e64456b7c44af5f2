// Refresh the submissions table every two seconds while one of its gradings is queued or running.
const table = document.querySelector("table[data-rows-url]");
async function refresh() {
  const body = table.querySelector("tbody");
  if (!body.querySelector("[data-pending]")) return;
  const response = await fetch(table.dataset.rowsUrl, { credentials: "same-origin" });
  if (response.ok) body.innerHTML = await response.text();
  setTimeout(refresh, 2000);
}
if (table) setTimeout(refresh, 2000);
