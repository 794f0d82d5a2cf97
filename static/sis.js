// SIS: what inline handlers did in Flask-Admin's templates and ours, bound here: the CSP allows no inline script.
document.addEventListener("click", function (event) {
  var target = event.target;
  if (!(target instanceof Element)) {
    return;
  }

  var confirmed = target.closest("[data-sis-confirm]");
  if (confirmed && !window.confirm(confirmed.getAttribute("data-sis-confirm"))) {
    event.preventDefault();
    return;
  }

  var action = target.closest("[data-sis-action]");
  if (action) {
    event.preventDefault();
    window.modelActions.execute(action.getAttribute("data-sis-action"));
    return;
  }

  var toggle = target.closest("[data-sis-toggle-password]");
  if (toggle) {
    var field = document.getElementById(toggle.getAttribute("data-sis-toggle-password"));
    field.type = field.type === "password" ? "text" : "password";
    return;
  }

  // Flask-Admin's menus link to javascript:void(0); the CSP would refuse (and report) that navigation.
  var link = target.closest("a[href^='javascript:']");
  if (link) {
    event.preventDefault();
  }
}, true);  // capturing: Flask-Admin's dropdown script stops the click before it would bubble up to here
