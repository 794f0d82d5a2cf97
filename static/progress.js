// SIS: parts of a page that follow work going on in the background update themselves until it is over: a contract
// waiting for its terminal numbers («Договоры»), a run of «Зарегистрировать сейчас» («Кассы»).
// Each such element names its JSON address (data-sis-progress), which answers {waiting, notice}. While the work goes
// on, the element's [data-sis-notice] shows the notice; once it is over, the element shows the last notice, stops
// asking, and every live region of the page ([data-sis-live] with an id) is swapped for the one the page has now.
(function () {
  "use strict";
  var PERIOD_MS = 3000;

  function waitingCells() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-sis-progress]"));
  }

  function get(url, asJson) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": asJson ? "application/json" : "text/html"}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status);
        }
        return asJson ? response.json() : response.text();
      });
  }

  function swapLiveRegions() {
    return get(window.location.href, false).then(function (html) {
      // A <template>'s content is inert: the fresh page's styles (another response's nonce) are not applied,
      // so the CSP has nothing to refuse; DOMParser would apply them and report each as a violation.
      var fresh = document.createElement("template");
      fresh.innerHTML = html;
      document.querySelectorAll("[data-sis-live][id]").forEach(function (region) {
        var replacement = fresh.content.getElementById(region.id);
        if (replacement) {
          region.replaceWith(document.importNode(replacement, true));
        }
      });
    });
  }

  function poll() {
    var cells = waitingCells();
    if (!cells.length) {
      return;  // nothing waits on this page: no more requests
    }
    Promise.all(cells.map(function (cell) {
      return get(cell.getAttribute("data-sis-progress"), true).then(function (state) {
        var notice = cell.querySelector("[data-sis-notice]");
        if (notice && state.notice) {
          notice.textContent = state.notice;
        }
        if (!state.waiting) {
          cell.removeAttribute("data-sis-progress");  // over: nothing more to ask, whether or not it is swapped
        }
        return !state.waiting;
      });
    })).then(function (changes) {
      return changes.indexOf(true) >= 0 ? swapLiveRegions() : null;
    }).catch(function () {
      // The server is restarting or the session ended: try again at the next period.
    }).then(function () {
      window.setTimeout(poll, PERIOD_MS);
    });
  }

  if (waitingCells().length) {
    window.setTimeout(poll, PERIOD_MS);
  }
})();
