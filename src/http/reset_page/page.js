// The reset page: sends the new password to the confirm endpoint with the
// uid and token of the page's own address, and says what the server
// answered. Served by latch (src/http/reset_page.rs), under a policy that
// allows no inline script: everything the page does is here.
"use strict";

(function () {
  var form = document.getElementById("reset-form");
  if (!form) {
    return; // The link was incomplete: the page says so, nothing to do.
  }
  var first = document.getElementById("new-password");
  var second = document.getElementById("new-password-again");
  var button = form.querySelector("button");
  var message = document.getElementById("message");
  // What the confirm endpoint says of a bad link (src/http/password.rs).
  var LINK_ERRORS = ["Invalid or expired token", "Invalid uid", "Missing parameters"];
  var params = new URLSearchParams(window.location.search);
  var confirmUrl = form.getAttribute("action") +
    "?uid=" + encodeURIComponent(params.get("uid") || "") +
    "&token=" + encodeURIComponent(params.get("token") || "");

  function say(text, kind) {
    message.textContent = text;
    message.className = "notice " + kind;
    message.hidden = false;
  }

  function invalid(field, flag) {
    if (flag) {
      field.setAttribute("aria-invalid", "true");
    } else {
      field.removeAttribute("aria-invalid");
    }
  }

  // The server's words: {"error": ...} from the reset views, {"detail": ...}
  // for limits, busy servers and the like.
  function answerText(status, body) {
    if (body && typeof body.error === "string") {
      return body.error;
    }
    if (body && typeof body.detail === "string") {
      return body.detail;
    }
    return "The server could not set the password (HTTP " + status + "). Try again later.";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    invalid(first, false);
    invalid(second, false);
    if (first.value !== second.value) {
      invalid(second, true);
      say("The two passwords do not match. Type the same password in both fields.", "error");
      second.focus();
      return;
    }
    button.disabled = true;
    say("Setting your new password\u2026", "pending");
    fetch(confirmUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ new_password: first.value }),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.json().catch(function () {
        return null;
      }).then(function (body) {
        if (response.ok) {
          form.hidden = true;
          first.value = "";
          second.value = "";
          say("Your password has been reset. You can now log in with your new password.", "success");
          message.focus();
          return;
        }
        var text = answerText(response.status, body);
        if (LINK_ERRORS.indexOf(text) >= 0) {
          // The link, not the password: the form cannot help.
          text += ". This link cannot be used (again): ask for a new reset mail.";
        } else if (response.status === 400) {
          // The password policy's own words ("This password is too short...").
          invalid(first, true);
          first.focus();
        }
        say(text, "error");
      });
    }, function () {
      say("The server could not be reached. Check your connection and try again.", "error");
    }).then(function () {
      button.disabled = false;
    });
  });

  form.hidden = false;
  first.focus();
})();
