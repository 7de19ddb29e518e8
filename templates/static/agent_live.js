// The agent's live view of an agent-led session: the person's video and sound over a second
// WebRTC connection, the agent's microphone sent back on it (the person hears the agent), and the
// session's live status beside it. No framework; loaded from /static after webrtc.js (the CSP
// allows no inline script).
(function () {
  "use strict";
  var root = document.getElementById("agent-live");
  if (!root) return;
  var csrf = root.dataset.csrf;
  var iceServers = IdpWebRTC.iceServers(root);
  var base = "/agent/sessions/" + encodeURIComponent(root.dataset.session);
  var texts = IdpWebRTC.texts(document.getElementById("texts"));
  function t(key) { return texts[key] || key; }
  function $(id) { return document.getElementById(id); }

  var video = $("live-video");
  var pc = null;
  var connecting = false;
  var polling = null;
  var microphone = null;  // the agent's, asked for once; null without one (the agent still watches)
  var askedMicrophone = false;

  async function openMicrophone() {
    if (askedMicrophone) return microphone;
    askedMicrophone = true;
    try {
      var stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }
      });
      microphone = stream.getAudioTracks()[0] || null;
    } catch (e) {
      microphone = null;  // none, or refused: the person then cannot hear the agent
    }
    showMicrophone();
    return microphone;
  }

  function showMicrophone() {
    var button = $("mute");
    button.hidden = !microphone;
    if (microphone) {
      button.textContent = microphone.enabled ? t("mute") : t("unmute");
      button.setAttribute("aria-pressed", microphone.enabled ? "false" : "true");
    }
  }

  function showConnection(state, detail) {
    var el = $("connection");
    el.dataset.state = state;
    el.textContent = t("connection-" + state) + (detail ? " (" + detail + ")" : "");
    $("watch").hidden = !(state === "failed" || state === "error");
  }

  function hangUp() {
    if (pc) {
      pc.close();
      pc = null;
    }
  }

  async function watch() {
    if (connecting) return;
    connecting = true;
    var mic = await openMicrophone();  // asked once, before the first connection
    hangUp();
    showConnection("connecting");
    var peer = new RTCPeerConnection({ iceServers: iceServers });
    pc = peer;
    peer.addTransceiver("video", { direction: "recvonly" });
    // one audio section: the person's sound comes in, the agent's voice goes out on it
    if (mic) peer.addTransceiver(mic, { direction: "sendrecv" });
    else peer.addTransceiver("audio", { direction: "recvonly" });
    var remote = new MediaStream();
    peer.addEventListener("track", function (event) {
      // the server sends the person's picture and sound as tracks of their own: one stream for both
      remote.addTrack(event.track);
      if (video.srcObject !== remote) video.srcObject = remote;
      video.play().catch(function () { /* muted autoplay: the browser plays it when it can */ });
    });
    peer.addEventListener("connectionstatechange", function () {
      if (peer !== pc) return;
      var state = peer.connectionState;
      if (state === "connected") showConnection("live");
      else if (state === "failed") showConnection("failed");
      else if (state === "closed" || state === "disconnected") showConnection("ended");
    });
    try {
      await peer.setLocalDescription(await peer.createOffer());
      await IdpWebRTC.waitForIce(peer);
      var answer = await IdpWebRTC.postJson(base + "/watch", csrf, {
        sdp: peer.localDescription.sdp, type: peer.localDescription.type
      });
      if (peer !== pc) return;
      if (!answer.ok) {
        hangUp();
        showConnection(answer.data.error === "not_live" ? "waiting" : "error", answer.data.error || answer.status);
        return;
      }
      await peer.setRemoteDescription(answer.data);
    } catch (e) {
      hangUp();
      showConnection("error", String(e && e.name || e));
    } finally {
      connecting = false;
    }
  }

  function yes(value) { return value ? t("yes") : t("no"); }

  function render(status) {
    $("live-state").textContent = t("state-" + status.status);
    var step = status.step;
    $("live-step").textContent = step ? t("step-" + step) : "–";
    $("live-challenge").textContent = status.challenge ? t("challenge-" + status.challenge) : "–";
    $("live-passed").textContent = (status.passed || []).map(function (c) { return t("challenge-" + c); }).join(", ") || "–";
    $("live-face").textContent = yes(status.face);
    $("live-others").textContent = yes(status.faces_in_frame > 1);
    $("live-document").textContent = yes(status.document_seen);
    $("live-fps").textContent = status.frames ? String(status.frames.fps) : "–";
    var sound = status.sound;
    $("live-sound").textContent = !sound ? "–" : !sound.microphone ? t("no-microphone") : sound.voice ? t("speaking") : t("silent");
    $("live-hears").textContent = !sound ? "–" : !sound.hears_agent ? t("person-cannot-hear")
      : !microphone ? t("agent-no-microphone") : sound.agent_talking ? (microphone.enabled ? t("yes") : t("muted")) : t("no");
    root.dataset.step = step || "";
    root.dataset.status = status.status;
  }

  async function poll() {
    var response;
    try {
      response = await fetch(base + "/live/status", { credentials: "same-origin", cache: "no-store" });
    } catch (e) { return; }
    if (!response.ok) return;
    var status = await response.json();
    if (status.review_url) {
      clearInterval(polling);
      hangUp();
      window.location.assign(status.review_url);
      return;
    }
    render(status);
    if (status.video && !pc && !connecting && $("connection").dataset.state === "waiting") watch();
    if (!status.video && pc && $("connection").dataset.state === "live") showConnection("ended");
  }

  $("watch").addEventListener("click", function () { watch(); });
  // the browser starts the video muted (autoplay); the agent turns the sound on with a click
  function showSound() {
    $("sound").textContent = video.muted ? t("sound-on") : t("sound-off");
    $("sound").setAttribute("aria-pressed", video.muted ? "false" : "true");
  }
  $("sound").addEventListener("click", function () {
    video.muted = !video.muted;
    if (!video.muted) video.play().catch(function () {});
    showSound();
  });
  showSound();
  $("mute").addEventListener("click", function () {
    if (!microphone) return;
    microphone.enabled = !microphone.enabled;  // muted, the browser sends silence
    showMicrophone();
  });
  window.addEventListener("pagehide", function () {
    if (!pc) return;
    hangUp();
    // the server closes its side at once rather than after the connection times out
    IdpWebRTC.postJson(base + "/watch/end", csrf, {}, { keepalive: true }).catch(function () {});
  });

  showConnection("waiting");
  poll();
  polling = setInterval(poll, 1000);
})();
