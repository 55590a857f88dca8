/* The console's navigation menu: a row of links on wide screens, a "Menu" disclosure (<details>) on
   narrow ones. The server renders it open, so it works without this script; here it is closed when
   the window is narrow, opened again when it widens, and Escape closes it and returns focus. */
(function () {
  "use strict";
  var menu = document.getElementById("nav-menu");
  if (!menu) return;
  var narrow = window.matchMedia("(max-width: 760px)");

  function fit() {
    menu.open = !narrow.matches;
    menu.setAttribute("data-layout", narrow.matches ? "menu" : "row");
  }

  fit();
  if (narrow.addEventListener) narrow.addEventListener("change", fit);
  menu.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && narrow.matches && menu.open) {
      menu.open = false;
      document.getElementById("nav-toggle").focus();
    }
  });
})();
