// Live updates: when something arrives in the citizen's vault, the open page shows it without a reload.
//
// The page marks the part that can change with data-live-region. An event (Server-Sent Events from
// /account/live, pds/web/live.py) says only which category changed. "refresh" pages then fetch
// themselves and swap in the new region if its words changed; the home page ("notice") says what
// arrived and links to itself, since loading it again is what marks things as seen. Either way a GOV.UK
// notification banner says so, in a polite live region. Without JavaScript, or without EventSource,
// the page is the page it always was.

const WORDS = {
  health: ["health record", "health records"],
  education: ["school record", "school records"],
  case: ["case record", "case records"],
};
const SETTLE_MS = 200; // one redraw for the several events of one delivery
const FIRST_RETRY_MS = 5000; // when the server refused the stream (busy, or signed out)
const LAST_RETRY_MS = 300000;

const region = document.querySelector("[data-live-region]");
if (region && "EventSource" in window) {
  start(region);
}

function start(region) {
  const wanted = (region.dataset.liveCategories || "").split(" ").filter(Boolean);
  const news = document.createElement("div");
  news.id = "live-news";
  news.setAttribute("aria-live", "polite");
  region.before(news);

  const arrived = {}; // category: count, for the notice
  let timer = null;
  let busy = Promise.resolve();
  let retry = FIRST_RETRY_MS;
  let position = region.dataset.liveSince || "";

  const settled = () => {
    timer = null;
    const counts = { ...arrived };
    busy = busy.then(() =>
      region.dataset.live === "notice" ? notice(news, counts) : refresh(region, news),
    );
  };

  const connect = () => {
    const url = "/account/live" + (position ? "?since=" + encodeURIComponent(position) : "");
    const source = new EventSource(url);
    source.addEventListener("open", () => {
      retry = FIRST_RETRY_MS;
    });
    source.addEventListener("records.arrived", (event) => {
      position = event.lastEventId || position;
      const change = JSON.parse(event.data);
      if (wanted.length && !wanted.includes(change.category)) return;
      arrived[change.category] = (arrived[change.category] || 0) + change.count;
      clearTimeout(timer);
      timer = setTimeout(settled, SETTLE_MS);
    });
    source.addEventListener("error", () => {
      // EventSource reconnects by itself after a dropped stream; a refused one (503, 401) it gives up on
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, retry * (0.5 + Math.random()));
        retry = Math.min(retry * 2, LAST_RETRY_MS);
      }
    });
  };
  connect();
}

const words = (element) => element.textContent.replace(/\s+/g, " ").trim();

async function refresh(region, news) {
  let response;
  try {
    response = await fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html" },
    });
  } catch {
    return; // offline for a moment: the next event tries again
  }
  if (!response.ok || response.redirected) return; // signed out meanwhile: leave the page as it is
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("[data-live-region]");
  if (!fresh || words(fresh) === words(region)) return;
  region.replaceChildren(...fresh.childNodes);
  const headline = region.dataset.liveHeadline && region.querySelector(region.dataset.liveHeadline);
  const parts = headline ? [...headline.children].map(words).filter(Boolean) : [];
  banner(news, region.dataset.liveMessage || "This page has changed", parts.join(" – "));
}

function notice(news, counts) {
  const said = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([category, n]) => {
      const [one, many] = WORDS[category] || ["record", "records"];
      return `${n} new or updated ${n === 1 ? one : many}`;
    });
  if (!said.length) return;
  const link = document.createElement("a");
  link.className = "govuk-notification-banner__link";
  link.href = window.location.pathname;
  link.textContent = "Show what's new";
  banner(news, said.join(", "), "", link);
}

function banner(news, heading, detail, link) {
  const box = document.createElement("div");
  box.className = "govuk-notification-banner";
  box.setAttribute("role", "region");
  box.setAttribute("aria-labelledby", "live-news-title");
  const header = document.createElement("div");
  header.className = "govuk-notification-banner__header";
  const title = document.createElement("h2");
  title.className = "govuk-notification-banner__title";
  title.id = "live-news-title";
  title.textContent = "New update";
  header.append(title);
  const content = document.createElement("div");
  content.className = "govuk-notification-banner__content";
  const p = document.createElement("p");
  p.className = "govuk-notification-banner__heading";
  p.textContent = heading;
  content.append(p);
  if (detail) {
    const more = document.createElement("p");
    more.className = "govuk-body";
    more.id = "live-news-detail";
    more.textContent = detail;
    content.append(more);
  }
  if (link) {
    const more = document.createElement("p");
    more.className = "govuk-body";
    more.append(link);
    content.append(more);
  }
  box.append(header, content);
  news.replaceChildren(box);
}
