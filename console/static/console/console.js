/* The agents' page: choosing an option, the keys, the stored customer's fill, and where focus goes.
   Plain script, no framework; htmx does the requests. */
(function () {
  "use strict";

  var KEYS = { a: "a", b: "b", c: "c", d: "declined" };

  function isTyping(element) {
    if (!element) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function pressed() {
    return document.querySelector("button[data-choice][aria-pressed='true']");
  }

  // What the record form says is selected, from the pressed button (also after the form is drawn again); with
  // no form to record (accepted, recorded, expired), the buttons are disabled, the pressed one still pressed.
  function showSelection() {
    var form = document.getElementById("record-form");
    document.querySelectorAll("button[data-choice]").forEach(function (button) {
      button.disabled = !form;
    });
    if (!form) return;
    var button = pressed();
    var input = form.querySelector("input[name='choice']");
    var words = document.getElementById("selected-choice");
    if (button && input) input.value = button.getAttribute("data-choice");
    if (words) {
      var declined = button && button.getAttribute("data-choice") === "declined";
      words.textContent = !button
        ? "Nothing selected yet: choose an option, or Customer declined."
        : "Selected: " + button.getAttribute("data-says") + "." +
          (declined ? " Record to note that the customer declined." : " Record when the customer agrees.");
    }
  }

  // "Choose x" and "Customer declined" select; nothing is posted until Record.
  function choose(button) {
    if (!button || button.disabled || !document.getElementById("record-form")) return;
    document.querySelectorAll("button[data-choice]").forEach(function (other) {
      var on = other === button;
      other.setAttribute("aria-pressed", on ? "true" : "false");
      var mark = other.parentNode.querySelector(".picked");
      if (mark) mark.hidden = !on;
    });
    showSelection();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-choice]") : null;
    if (button) choose(button);
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.altKey || event.metaKey) return;
    var target = event.target;
    // Enter submits the form it is typed in (a select or a checkbox too), never a textarea's new line. In the
    // customer ID, an ID not looked up yet is looked up first (the form is filled); a second Enter submits.
    if (event.key === "Enter" && !event.shiftKey) {
      if (target && target.hasAttribute && target.hasAttribute("data-lookup-first")) {
        var typed = target.value.trim();
        if (typed && typed !== target.getAttribute("data-looked-up")) {
          event.preventDefault();
          if (window.htmx) window.htmx.trigger(target, "change");
          return;
        }
      }
      var form = target && target.closest ? target.closest("form[data-enter-submits]") : null;
      if (form && (target.tagName === "INPUT" || target.tagName === "SELECT") && target.type !== "submit") {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.shiftKey || isTyping(target)) return;
    var choice = KEYS[event.key];
    if (!choice) return;
    var button = document.querySelector("button[data-choice='" + choice + "']");
    if (button && document.getElementById("record-form")) {
      event.preventDefault();
      choose(button);
    }
  });

  // The stored customer's fields, sent with the lookup fragment, fill the form.
  function fillCustomer() {
    var data = document.getElementById("customer-fill");
    if (!data) return;
    var values = JSON.parse(data.textContent);
    data.remove();
    Object.keys(values).forEach(function (name) {
      var field = document.querySelector("#incident-form [name='" + name + "']");
      if (field) field.value = values[name];
    });
  }

  // Focus goes where the new content says (the options' heading, the first field with a message, the status).
  function focusMarked() {
    var element = document.querySelector("[data-autofocus]");
    if (!element) return;
    element.removeAttribute("data-autofocus");
    element.focus();
  }

  function settled() {
    fillCustomer();
    showSelection();
    focusMarked();
  }

  document.addEventListener("htmx:afterSettle", settled);
  document.addEventListener("DOMContentLoaded", settled);

  // A request that failed says so in words, instead of nothing happening.
  function alertText(text) {
    var box = document.getElementById("console-alert");
    if (box) box.textContent = text;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    alertText("");
    // The customer ID being looked up: Enter in it now submits (see the keys above).
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-lookup-first")) {
      elt.setAttribute("data-looked-up", elt.value.trim());
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : "";
    alertText(status === 404 ? "Not found: this offer set is not yours, or is gone." :
      "The server could not do this (status " + status + "); try again in a moment.");
  });
  document.addEventListener("htmx:sendError", function () {
    alertText("No answer from the server: check the connection and try again.");
  });
})();
