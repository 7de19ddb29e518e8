// An email address is typed once. The sign-in page has two forms that ask for it (the sign-in
// link, and the password behind "Sign in with your password"): what is typed in one shows in
// the other. "Forgot your password?" opens the reset page with it filled in. The address goes
// from page to page in this tab's sessionStorage, never in a URL, which server logs and
// Referer headers would keep; the tab forgets it when it is closed.
(function () {
  "use strict";
  var KEY = "idp-email";
  var fields = Array.prototype.slice.call(document.querySelectorAll("input[type=email][data-carry-email]"));
  if (!fields.length) return;

  function remembered() {
    try {
      return window.sessionStorage.getItem(KEY) || "";
    } catch (e) {
      return "";  // storage refused (private mode, policy): each field as typed
    }
  }

  function remember(value) {
    try {
      if (value) window.sessionStorage.setItem(KEY, value);
      else window.sessionStorage.removeItem(KEY);
    } catch (e) {}
  }

  // what the server filled in wins over what the tab remembers
  var start = fields.map(function (f) { return f.value; }).filter(Boolean)[0] || remembered();
  fields.forEach(function (field) {
    if (!field.value && start) field.value = start;
    field.addEventListener("input", function () {
      fields.forEach(function (other) {
        if (other !== field) other.value = field.value;
      });
      remember(field.value.trim());
    });
  });
  if (start) remember(start.trim());
})();
