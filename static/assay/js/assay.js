// Assay dashboard: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#element-id">Copy</button>
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) {
      return;
    }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () {
        button.textContent = label;
      }, 1500);
    });
  });

  // Close an open menu (<details class="user-menu">) when clicking elsewhere or pressing Escape.
  function closeMenus(except) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (menu !== except) {
        menu.removeAttribute("open");
      }
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest("details.user-menu"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      closeMenus(null);
    }
  });

  // Follow a live region: <div data-live-url="/path/?part=live" data-live-every="3"> is replaced every few
  // seconds by the fragment the URL answers, until the fragment says it is no longer live (data-live="0").
  // Paused while the tab is hidden; a failed fetch is tried again at the next tick. Without this, a reload.
  document.querySelectorAll("[data-live-url]").forEach(function (region) {
    var url = region.getAttribute("data-live-url");
    var every = Math.max(2, parseInt(region.getAttribute("data-live-every"), 10) || 3) * 1000;
    function tick() {
      if (document.hidden) {
        setTimeout(tick, every);
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          // signed out (sent to the login page) or refused: stop; a reload shows why
          return response.ok && !response.redirected ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) {
            return;
          }
          region.innerHTML = html;
          var inner = region.querySelector("[data-live]");
          if (inner && inner.getAttribute("data-live") !== "0") {
            setTimeout(tick, every);
          }
        })
        .catch(function () {
          setTimeout(tick, every);
        });
    }
    setTimeout(tick, every);
  });

  // Confirm destructive actions: <form data-confirm="Revoke this token?">
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
})();
