// A moment on a page, <time datetime="2026-12-08T01:30:05Z" data-local-time="datetime">, comes from
// the server in UTC ("2026-12-08 01:30 UTC"), which is what a browser without scripts shows. Here it
// is shown as the reader's clock shows it: in the browser's time zone, formatted for the page's
// language (<html lang>), with the UTC moment, to the second, as its title. data-local-time="date"
// shows the day alone. A browser that cannot format dates and times this way keeps the UTC text.
(function () {
  if (typeof Intl !== "object" || typeof Intl.DateTimeFormat !== "function") {
    return;
  }
  var OPTIONS = {
    datetime: { dateStyle: "medium", timeStyle: "short" },
    date: { dateStyle: "medium" }
  };
  var INSTANT = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})Z$/;
  // the page's language, or the browser's own tag for it where that adds a region ("en-GB" on an
  // "en" page writes 24-hour times) and no script (an "sr" page is Cyrillic, "sr-Latn-RS" is not)
  var language = document.documentElement.lang || undefined;
  var own = navigator.languages || [navigator.language];
  for (var n = 0; language && n < own.length; n++) {
    var tag = own[n] || "";
    var prefix = language.toLowerCase() + "-";
    if (tag.toLowerCase().indexOf(prefix) === 0 && !/^[a-z]{4}(-|$)/i.test(tag.slice(prefix.length))) {
      language = tag;
      break;
    }
  }
  var formats = {};

  function format(kind) {
    if (!(kind in formats)) {
      formats[kind] = null;
      try {
        var made = new Intl.DateTimeFormat(language, OPTIONS[kind]);
        // a browser that knows no dateStyle ignores it and would write "12/8/2026" alone
        if (made.resolvedOptions().dateStyle) {
          formats[kind] = made;
        }
      } catch (e) {
        // an unknown language or option: keep the UTC text
      }
    }
    return formats[kind];
  }

  var times = document.querySelectorAll("time[data-local-time]");
  for (var i = 0; i < times.length; i++) {
    var time = times[i];
    var kind = time.getAttribute("data-local-time");
    var parts = INSTANT.exec(time.getAttribute("datetime") || "");
    var formatter = OPTIONS.hasOwnProperty(kind) ? format(kind) : null;
    if (!parts || !formatter) {
      continue;
    }
    var when = new Date(parts[0]);
    if (isNaN(when.getTime())) {
      continue;
    }
    time.textContent = formatter.format(when);
    time.title = parts[1] + " " + parts[2] + " UTC";
  }
})();
