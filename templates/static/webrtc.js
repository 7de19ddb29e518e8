// What the pages that speak WebRTC with the server share (the person's capture page and the
// agent's live view): the page's texts, waiting for ICE gathering (no trickle ICE: the offer
// carries every candidate), and JSON posts with the page's CSRF token. No framework.
var IdpWebRTC = (function () {
  "use strict";

  function texts(template) {
    var found = {};
    if (!template) return found;
    Array.prototype.forEach.call(template.content.querySelectorAll("[data-key]"), function (el) {
      found[el.dataset.key] = el.textContent;
    });
    return found;
  }

  function waitForIce(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      function check() {
        if (peer.iceGatheringState === "complete") {
          peer.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      }
      peer.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 5000);  // gathering can stall on an unreachable STUN server
    });
  }

  async function postJson(url, csrf, body, options) {
    var response = await fetch(url, Object.assign({
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }, options || {}));
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    return { ok: response.ok, status: response.status, data: data };
  }

  function iceServers(root) {
    try { return JSON.parse(root.dataset.ice || "[]"); } catch (e) { return []; }
  }

  return { texts: texts, waitForIce: waitForIce, postJson: postJson, iceServers: iceServers };
})();
