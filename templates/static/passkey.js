// Passkey ceremonies in the browser (WebAuthn Level 3), without dependencies.
//
// A page puts the server's options JSON in the page and a button (or form) that starts the
// ceremony; the result goes, as JSON (PublicKeyCredential.toJSON()), into a hidden field of the
// form named by data-form, and that form is submitted. Markup:
//
//   <script type="application/json" id="passkey-options">{ ...options from the server... }</script>
//   <form id="passkey-form" method="post"> ... <input type="hidden" name="credential"> </form>
//   <button type="button" data-passkey="create"            (or "get")
//           data-options="passkey-options"                 id of the JSON element above
//           data-form="passkey-form"                       id of the form to submit
//           data-field="credential"                        name of its hidden field (default "credential")
//           data-error-field="error"                       optional: a field for the error name, then submit
//           data-status="passkey-status">                  optional: id of an aria-live element for errors
//   </button>
//   <p data-passkey-unsupported hidden>…</p>             shown when the browser has no WebAuthn
//
// data-passkey="autofill" on an element starts a conditional (autofill) request on page load for
// username-less sign-in, when the browser supports it (an <input autocomplete="username webauthn">).
// No inline script is needed, so a Content-Security-Policy of script-src 'self' suffices.
(function () {
  "use strict";

  function toBuffer(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var padded = base64 + "===".slice((base64.length + 3) % 4);
    var binary = atob(padded);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var out = { type: c.type, id: toBuffer(c.id) };
      if (c.transports) out.transports = c.transports;
      return out;
    });
  }

  function creationOptions(json) {
    var P = window.PublicKeyCredential;
    if (P && typeof P.parseCreationOptionsFromJSON === "function") return P.parseCreationOptionsFromJSON(json);
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBuffer(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var P = window.PublicKeyCredential;
    if (P && typeof P.parseRequestOptionsFromJSON === "function") return P.parseRequestOptionsFromJSON(json);
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return credential.toJSON();
      } catch (e) {
        // some browsers expose toJSON but fail on some credentials; fall through
      }
    }
    var r = credential.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function readOptions(el) {
    var source = document.getElementById(el.getAttribute("data-options"));
    if (!source) throw new Error("passkey.js: no element with id " + el.getAttribute("data-options"));
    return JSON.parse(source.textContent);
  }

  function field(form, name) {
    var input = form.elements.namedItem(name);
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    return input;
  }

  function submit(form) {
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  }

  function report(el, error) {
    var statusId = el.getAttribute("data-status");
    var status = statusId && document.getElementById(statusId);
    if (status) {
      status.textContent = status.getAttribute("data-" + error.name) || status.getAttribute("data-error") || error.message;
      status.hidden = false;
    }
    var form = document.getElementById(el.getAttribute("data-form"));
    var errorField = el.getAttribute("data-error-field");
    if (form && errorField) {
      field(form, errorField).value = error.name || "Error";
      submit(form);
    }
  }

  function run(el, mode, mediation) {
    var form = document.getElementById(el.getAttribute("data-form"));
    var name = el.getAttribute("data-field") || "credential";
    var json = readOptions(el);
    var call =
      mode === "create"
        ? navigator.credentials.create({ publicKey: creationOptions(json) })
        : navigator.credentials.get(
            mediation ? { publicKey: requestOptions(json), mediation: mediation } : { publicKey: requestOptions(json) }
          );
    el.setAttribute("aria-busy", "true");
    return call
      .then(function (credential) {
        if (!credential) throw Object.assign(new Error("no credential"), { name: "NotAllowedError" });
        field(form, name).value = JSON.stringify(credentialJSON(credential));
        submit(form);
      })
      .catch(function (error) {
        report(el, error);
      })
      .then(function () {
        el.removeAttribute("aria-busy");
      });
  }

  function start() {
    var supported = !!(window.PublicKeyCredential && navigator.credentials);
    var all = document.querySelectorAll("[data-passkey]");
    document.querySelectorAll("[data-passkey-unsupported]").forEach(function (el) {
      el.hidden = supported;
    });
    all.forEach(function (el) {
      var mode = el.getAttribute("data-passkey");
      if (!supported) {
        el.hidden = true;
        return;
      }
      if (mode === "autofill") {
        var P = window.PublicKeyCredential;
        if (typeof P.isConditionalMediationAvailable === "function") {
          P.isConditionalMediationAvailable().then(function (ok) {
            if (ok) run(el, "get", "conditional");
          });
        }
        return;
      }
      el.addEventListener("click", function (event) {
        event.preventDefault();
        run(el, mode === "create" ? "create" : "get");
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();

  window.eidPasskey = { toBuffer: toBuffer, toBase64url: toBase64url, credentialJSON: credentialJSON };
})();
