// The person's side of a video identification: camera check, WebRTC to the server, live steps,
// the SMS code. No framework; loaded from /static after webrtc.js (the CSP allows no inline script).
(function () {
  "use strict";
  var root = document.getElementById("videoid");
  if (!root) return;
  var sessionId = root.dataset.session;
  var csrf = root.dataset.csrf;
  var iceServers = IdpWebRTC.iceServers(root);
  var base = "/videoid/" + encodeURIComponent(sessionId);
  var texts = IdpWebRTC.texts(document.getElementById("texts"));
  function t(key) { return texts[key] || ""; }
  function $(id) { return document.getElementById(id); }
  function setCheck(id, ok, text) {
    var el = $(id);
    el.dataset.state = ok ? "ok" : "problem";
    el.querySelector(".value").textContent = text;
  }

  var preview = $("preview");
  var stream = null;
  var pc = null;
  var polling = null;
  var started = false;

  function lightLevel() {
    // the mean luma of a small sample of the preview (ITU-R BT.601 weights)
    var canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 48;
    var ctx = canvas.getContext("2d");
    if (!ctx || !preview.videoWidth) return null;
    ctx.drawImage(preview, 0, 0, 64, 48);
    var data = ctx.getImageData(0, 0, 64, 48).data;
    var sum = 0;
    for (var i = 0; i < data.length; i += 4) sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    return sum / (data.length / 4);
  }

  function deviceCheck() {
    if (microphone) {
      var mic = stream.getAudioTracks()[0];
      setCheck("check-microphone", !!mic, mic ? (mic.label || t("ok")) : t("no-microphone"));
    }
    var track = stream.getVideoTracks()[0];
    var s = track.getSettings ? track.getSettings() : {};
    var w = s.width || preview.videoWidth, h = s.height || preview.videoHeight;
    setCheck("check-camera", true, track.label || t("ok"));
    setCheck("check-resolution", w >= 640 && h >= 360, w + "×" + h + (w >= 640 && h >= 360 ? "" : " (" + t("too-low") + ")"));
    var light = lightLevel();
    if (light !== null) setCheck("check-light", light >= 40, light >= 40 ? t("ok") : t("too-dark"));
  }

  // The microphone only where an agent listens (the server says so: a reviewed or agent-led
  // session). Without one (none found, or one another program holds) the camera alone: the
  // checks need only the video; the recording then has no sound and an agent cannot hear.
  var microphone = root.dataset.microphone === "yes";
  // In an agent-led session the server sends the agent's voice back on the sound's section (silence
  // until the agent talks); without a microphone the page still asks to hear it.
  var agentVoice = root.dataset.agentVoice === "yes";
  var WITHOUT_MICROPHONE = ["NotFoundError", "NotReadableError", "OverconstrainedError"];

  async function openCamera() {
    var video = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" };
    try {
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          video: video, audio: microphone ? { echoCancellation: true, noiseSuppression: true } : false
        });
      } catch (e) {
        if (!microphone || !e || WITHOUT_MICROPHONE.indexOf(e.name) < 0) throw e;
        stream = await navigator.mediaDevices.getUserMedia({ video: video, audio: false });
      }
    } catch (e) {
      $("camera-error").hidden = false;
      setCheck("check-camera", false, String(e && e.name || e));
      return;
    }
    preview.srcObject = stream;
    preview.addEventListener("loadeddata", deviceCheck, { once: true });
    setInterval(function () { if (!started) deviceCheck(); }, 1000);
    $("start").disabled = false;
  }

  function post(path, body) { return IdpWebRTC.postJson(base + path, csrf, body); }

  async function connect() {
    started = true;
    $("start").disabled = true;
    pc = new RTCPeerConnection({ iceServers: iceServers });
    stream.getTracks().forEach(function (track) {
      // the checks read fine print and compare faces: when the browser must give something up
      // (a busy processor, a thin connection), it keeps the resolution and lowers the frame rate
      if (track.kind === "video" && "contentHint" in track) track.contentHint = "detail";
      pc.addTrack(track, stream);
    });
    if (agentVoice && !stream.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", function (event) {
      var speaker = $("agent-voice");
      if (event.track.kind !== "audio" || !speaker) return;
      speaker.srcObject = new MediaStream([event.track]);
      speaker.play().catch(function () { /* played once the browser allows it */ });
    });
    await pc.setLocalDescription(await pc.createOffer());
    await IdpWebRTC.waitForIce(pc);
    var answer = await post("/offer", { sdp: pc.localDescription.sdp, type: pc.localDescription.type });
    if (!answer.ok) {
      showHint(t("connection-failed") + " (" + (answer.data.error || answer.status) + ")");
      return;
    }
    await pc.setRemoteDescription(answer.data);
    $("device-check").hidden = true;
    $("steps").hidden = false;
    polling = setInterval(poll, 400);
  }

  function showHint(text) { $("hint").textContent = text; }

  function render(status) {
    var step = status.step;
    if (status.status === "awaiting_code") step = "code";
    if (step === "captured") step = "checking";
    $("step-name").textContent = t("step-" + step) || t("step-checking");
    var what = step === "liveness" && status.challenge ? "do-" + status.challenge : "do-" + step;
    $("instruction").textContent = t(what);
    var hint = "";
    if ((step === "face" || step === "liveness") && !status.face) hint = t("hint-no-face");
    else if (status.faces_in_frame > 1) hint = t("hint-several-faces");
    else if ((step === "document_front" || step === "document_back" || step === "tilt") && !status.document_seen) hint = t("hint-no-document");
    else if ((step === "document_front" || step === "document_back") && status.confirming_document) hint = t("hint-confirming-document");
    showHint(hint);
    setCheck("check-face", !!status.face, status.face ? t("ok") : t("not-yet"));
    var line = $("agent-line");
    if (line && status.agent) {
      line.dataset.talking = status.agent.talking ? "yes" : "no";
      line.textContent = t(status.agent.talking ? "agent-talking" : "agent-waiting");
    }
    if (step === "code" && status.sms && $("code-form").hidden) {  // shown once the SMS is on its way
      $("code-form").hidden = false;
      $("code-phone").textContent = status.sms.masked_phone;
      $("code").focus();
    }
    root.dataset.step = step;
  }

  async function poll() {
    var response = await fetch(base + "/status", { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    var status = await response.json();
    if (status.result_url) {
      clearInterval(polling);
      if (pc) pc.close();
      window.location.assign(status.result_url);
      return;
    }
    render(status);
  }

  $("start").addEventListener("click", function () {
    connect().catch(function (e) { showHint(t("connection-failed") + " " + e); });
  });

  $("code-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    var result = await post("/code", { code: $("code").value });
    if (result.data.result_url) {
      clearInterval(polling);
      if (pc) pc.close();
      window.location.assign(result.data.result_url);
      return;
    }
    var error = $("code-error");
    error.hidden = false;
    error.textContent = t("code-wrong");
  });

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) openCamera();
  else $("camera-error").hidden = false;
})();
