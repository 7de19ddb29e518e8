// A page that answers a form post (a wrong code, the recovery codes shown) stands in the
// browser's history as that post: reloading it, or coming back to it, would send the form again
// (Chromium's "Confirm Form Resubmission"), and some posts must not be sent twice. The server
// names the page to show instead, the GET page of the same step, in data-url; it takes the
// post's place in the history, so a reload or Back shows that page. Nothing else changes: the
// page on screen stays as it is.
(function () {
  var script = document.currentScript;
  var url = script && script.getAttribute("data-url");
  if (url && url.charAt(0) === "/" && url.charAt(1) !== "/" && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", url);
  }
})();
