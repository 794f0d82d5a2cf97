// SIS: the date and time picker of Flask-Admin's filters in Russian (month and day names, Monday first, its
// buttons): daterangepicker takes them from its options, which Flask-Admin's form.js does not give.
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
  var original = $.fn.daterangepicker;
  $.fn.daterangepicker = function (options, callback) {
    var given = options || {};
    return original.call(this, $.extend({}, given, {locale: $.extend({}, russian, given.locale)}), callback);
  };
})(window.jQuery);
