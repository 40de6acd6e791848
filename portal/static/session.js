// Inactivity: show a warning shortly before the server ends the session, then leave.
// The server is the authority: /session/expiree sends back home if the session is still alive.
(function () {
  "use strict";
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  var warnAt = parseInt(body.getAttribute("data-warn-seconds") || "0", 10);
  var warning = document.getElementById("avertissement-inactivite");
  if (!idle || !warning) {
    return;
  }
  window.setTimeout(function () {
    warning.hidden = false;
    var button = document.getElementById("rester-connecte");
    if (button) {
      button.focus();
    }
  }, warnAt * 1000);
  window.setTimeout(function () {
    window.location.assign("/session/expiree");
  }, idle * 1000 + 1000);
})();
