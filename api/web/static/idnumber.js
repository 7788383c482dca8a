/* liudong: the identity number checked as it is typed (GB 11643-1999), on the residents'
   register form. The server checks it again; this only tells the caseworker at once.
   The messages come from the page (data-* attributes of the <output>), in its language. */
(function () {
  "use strict";
  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var CHECK = "10X98765432";

  function birthDate(value) {
    var y = +value.slice(6, 10), m = +value.slice(10, 12), d = +value.slice(12, 14);
    var day = new Date(Date.UTC(y, m - 1, d));
    if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) return null;
    if (day.getTime() > Date.now()) return null;  /* as the server: nobody is born in the future */
    return value.slice(6, 10) + "-" + value.slice(10, 12) + "-" + value.slice(12, 14);
  }

  /* The rule the number breaks ("length", "format", "birth", "checksum"), or its facts. */
  function check(raw) {
    var value = raw.trim().toUpperCase();
    if (value.length !== 18) return { rule: "length", n: value.length };
    if (!/^[0-9]{17}[0-9X]$/.test(value)) return { rule: "format" };
    var born = birthDate(value);
    if (born === null) return { rule: "birth" };
    var total = 0;
    for (var i = 0; i < 17; i++) total += (+value[i]) * WEIGHTS[i];
    if (value[17] !== CHECK[total % 11]) return { rule: "checksum" };
    return { rule: null, born: born, male: (+value[16]) % 2 === 1 };
  }

  function attach(input) {
    var out = document.getElementById(input.getAttribute("data-idcheck"));
    if (!out) return;
    function show() {
      var raw = input.value;
      var result = check(raw);
      var text = "", state = "";
      if (raw.trim() === "") {
        text = "";
      } else if (result.rule === "length" && result.n < 18) {
        text = out.dataset.typing.replace("{n}", String(result.n));
      } else if (result.rule) {
        text = out.dataset[result.rule === "birth" ? "birth" : result.rule];
        state = "bad";
      } else {
        text = out.dataset.ok.replace("{date}", result.born)
          .replace("{sex}", result.male ? out.dataset.male : out.dataset.female);
        state = "good";
      }
      out.textContent = text;
      out.className = "idcheck" + (state ? " " + state : "");
      out.setAttribute("data-state", state || "typing");
      /* A number that breaks the rule cannot be sent; one still being typed can't either. */
      input.setCustomValidity(result.rule && raw.trim() !== "" ? (state ? text : out.dataset.length) : "");
    }
    input.addEventListener("input", show);
    input.addEventListener("blur", show);
    show();
  }

  function start() {
    var inputs = document.querySelectorAll("input[data-idcheck]");
    for (var i = 0; i < inputs.length; i++) attach(inputs[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
