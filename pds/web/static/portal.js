// The request page follows its status live: it asks the portal every few seconds until the patient
// has answered. Without JavaScript the page shows the status as it was when loaded.
const tag = document.getElementById("request-status");
const POLL_MS = 2000;
const FINAL = new Set(["refused", "expired", "revoked", "withdrawn"]);

async function poll() {
  try {
    const answer = await fetch(tag.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (answer.ok) {
      const now = await answer.json();
      if (now.status !== tag.dataset.status) {
        tag.dataset.status = now.status;
        tag.textContent = now.words;
        tag.className = `govuk-tag govuk-tag--${now.colour}`;
        document.getElementById("records-link").hidden = !now.readable;
      }
      if (FINAL.has(now.status)) return;
    }
  } catch (e) {
    // offline for a moment: try again
  }
  setTimeout(poll, POLL_MS);
}

if (tag && tag.dataset.statusUrl) setTimeout(poll, POLL_MS);
