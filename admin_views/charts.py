"""Charts drawn on the server as SVG (templates/charts.html): no script, nothing for the CSP to allow, and
every bar or point says its figures in a <title> that browsers show as a tooltip and screen readers read."""
import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 38  # room for the axes' labels


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    css: str            # its colour: a class of templates/charts.html's style
    values: list[int]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str

    def __post_init__(self):
        # Tenths of a pixel are plenty; rounded here, the template prints them as they are.
        for name in ("x", "y", "width", "height"):
            object.__setattr__(self, name, round(getattr(self, name), 1))


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class BarChart:
    title: str
    description: str
    y_label: str
    legend: list[tuple[str, str]]  # (css, label)
    columns: list[Rect] = field(default_factory=list)  # one transparent column per category: its summary
    bars: list[Rect] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM
    empty: bool = False


def nice_ceiling(value: int) -> tuple[int, int]:
    """The axis' top and step: 1, 2 or 5 times a power of ten, so that four or five steps reach `value`."""
    if value <= 4:  # a few registers are a low bar, not one that fills the chart
        return 4, 1
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(int(step), 1)
    return step * math.ceil(value / step), step


def stacked_bars(title: str, y_label: str, labels: list[str], tooltips: list[str], series: list[Series],
                 label_every: int = 1, label_from_end: bool = False) -> BarChart:
    """Bars stacked by series, one per category; `labels` under the axis every `label_every`-th one (counted
    from the last with `label_from_end`), `tooltips` name each category in its bars' titles («05.11»)."""
    chart = BarChart(title, "", y_label, [(s.css, s.label) for s in series])
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top, step = nice_ceiling(max(totals, default=0))
    chart.empty = not any(totals)
    plot_height = chart.bottom - TOP
    slot = (chart.right - chart.left) / max(len(labels), 1)
    scale = plot_height / top
    for value in range(0, top + 1, step):
        chart.y_ticks.append(Tick(round(chart.bottom - value * scale, 1), str(value)))
    for index, (label, tooltip) in enumerate(zip(labels, tooltips, strict=True)):
        x = chart.left + index * slot
        summary = "; ".join(f"{s.label.lower()} — {s.values[index]}" for s in series)
        chart.columns.append(Rect(x, TOP, slot, plot_height, "sis-column", f"{tooltip}: {summary}"))
        base = chart.bottom
        for s in series:
            height = s.values[index] * scale
            if height:
                base -= height
                chart.bars.append(Rect(x + slot * 0.1, base, slot * 0.8, height, s.css,
                                       f"{tooltip}: {s.label.lower()} — {s.values[index]}"))
        if (len(labels) - 1 - index if label_from_end else index) % label_every == 0:
            chart.x_ticks.append(Tick(round(x + slot / 2, 1), label))
    chart.description = "; ".join(f"{tooltip}: {total}" for tooltip, total in zip(tooltips, totals, strict=True)
                                  if total) or "Данных за этот период нет."
    return chart


@dataclass
class Sparkline:
    """A small line of one contract's free numbers per day."""
    title: str
    points: str                       # the polyline's "x,y x,y …"
    dots: list[tuple[float, float, str]]  # (x, y, title) per day
    width: int = 300
    height: int = 60


def sparkline(title: str, values: list[int], tooltips: list[str], width: int = 300, height: int = 60) -> Sparkline:
    step = (width - 8) / max(len(values) - 1, 1)
    span = (height - 8) / max(max(values, default=0), 1)
    dots = [(round(4 + index * step, 1), round(height - 4 - value * span, 1), tooltip)
            for index, (value, tooltip) in enumerate(zip(values, tooltips, strict=True))]
    return Sparkline(title, " ".join(f"{x},{y}" for x, y, _ in dots), dots, width, height)
