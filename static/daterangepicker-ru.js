// SIS: the date and time picker of Flask-Admin's filters in Russian (month and day names, Monday first, its
// buttons): daterangepicker takes them from its options, which Flask-Admin's form.js does not give.
// It also writes and reads dates as Russians do (ДД.ММ.ГГГГ ЧЧ:ММ, a period joined by « — »), as
// admin_views/filters.py reads them, instead of Flask-Admin's "2026-01-15 10:00:00 to 2026-01-15 12:00:00".
(function ($) {
  if (!$ || !$.fn.daterangepicker) {
    return;
  }
  var russian = {
    applyLabel: "Применить",
    cancelLabel: "Отмена",
    fromLabel: "С",
    toLabel: "По",
    weekLabel: "Н",
    customRangeLabel: "Другой период",
    daysOfWeek: ["Вс", "Пн", "Вт", "Ср", "Чт", "Пт", "Сб"],  // Sunday first, as moment gives them: firstDay turns them
    monthNames: ["янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"],
    firstDay: 1
  };
  // Flask-Admin's filters.js names its formats in data-date-format; form.js passes them and " to " on.
  var formats = {"YYYY-MM-DD": "DD.MM.YYYY", "YYYY-MM-DD HH:mm:ss": "DD.MM.YYYY HH:mm", "HH:mm:ss": "HH:mm"};
  var separator = " — ";

  // The picker reads the field at every key and writes back what it made of it: "1", the first key of
  // "15.01.2026", became a date and replaced the text. It now reads only a complete value.
  function complete(picker) {
    var parts = picker.singleDatePicker ? [picker.element.val()] : picker.element.val().split(picker.separator);
    return parts.length === (picker.singleDatePicker ? 1 : 2) && parts.every(function (part) {
      return moment(part, picker.format, true).isValid();
    });
  }

  var original = $.fn.daterangepicker;
  $.fn.daterangepicker = function (options, callback) {
    var given = options || {};
    var ours = {locale: $.extend({}, russian, given.locale)};
    if (formats[given.format]) {
      ours.format = formats[given.format];
    }
    if (given.separator === " to ") {
      ours.separator = separator;
    }
    var result = original.call(this, $.extend({}, given, ours), callback);
    this.each(function () {
      var picker = $(this).data("daterangepicker");
      if (picker) {
        $(this).off("keyup.daterangepicker").on("keyup.daterangepicker", function () {
          if (complete(picker)) {
            picker.updateFromControl();
          }
        });
      }
    });
    return result;
  };
})(window.jQuery);
