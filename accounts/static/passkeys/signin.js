// Sign in with a passkey, on the hosted sign-in page (and the admin's): the one script of the pages.
//
// The page works without it (email and password). Where the browser speaks WebAuthn Level 3's JSON
// (PublicKeyCredential.parseRequestOptionsFromJSON), it shows the "Sign in with a passkey" button,
// and, where the browser offers passkeys in the email field's autofill (conditional mediation),
// starts a quiet request for that. Either way: fetch the options and the ceremony from the API, let
// the browser run the ceremony, put the ceremony and credential.toJSON() in the hidden form, post it.
// The server checks everything; this file only carries.
(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  var button = document.getElementById("passkey-signin");
  var status = document.getElementById("passkey-status");
  if (!form || !button || !window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    return;
  }
  var pending = null;

  function ceremony(conditional) {
    if (pending) {
      pending.abort();
    }
    var controller = new AbortController();
    pending = controller;
    return fetch(form.dataset.optionsUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: "{}",
      credentials: "omit",
      signal: controller.signal,
    })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error("options: " + answer.status);
        }
        return answer.json();
      })
      .then(function (started) {
        var request = { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(started.options), signal: controller.signal };
        if (conditional) {
          request.mediation = "conditional";
        }
        return navigator.credentials.get(request).then(function (credential) {
          form.elements.ceremony.value = started.ceremony;
          form.elements.credential.value = JSON.stringify(credential.toJSON());
          button.disabled = true;
          form.submit();
        });
      });
  }

  form.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = "";
    // A new attempt: the refusal of the last one (the server's, above the form) is old news.
    var refusal = document.getElementById("form-errors");
    if (refusal) {
      refusal.hidden = true;
    }
    ceremony(false).catch(function (error) {
      if (error.name !== "AbortError") {
        status.textContent = form.dataset.failed;
      }
    });
  });
  if (PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (available) {
        // Passkeys in the email field's autofill; a click on the button cancels this request.
        ceremony(true).catch(function () {});
      }
    });
  }
})();
