//! Charts as SVG drawn on the server: a line per series over the measurements in time order,
//! an optional target band, labelled axes, and a text description for screen readers (the
//! table under each chart has every value).

use maud::{Markup, PreEscaped, html};

use crate::web::i18n::{Lang, t, tf};
use crate::web::pages::format_number;

/// Target range of blood glucose, mg/dL (3.9 to 10 mmol/L).
pub const GLUCOSE_TARGET_MG_DL: (f64, f64) = (70.0, 180.0);

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// Values, oldest first.
    pub values: Vec<f64>,
    /// Stroke colour (dark enough on the chart's background).
    pub colour: &'static str,
    /// Dashed, so lines differ by more than colour.
    pub dashed: bool,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Id for the title and description elements.
    pub id: String,
    /// The title.
    pub title: String,
    /// The unit of the vertical axis.
    pub unit: String,
    /// The lines.
    pub series: Vec<Series>,
    /// A target band (low, high), drawn behind the lines.
    pub band: Option<(f64, f64)>,
    /// Date of the first and last point.
    pub span: (String, String),
}

fn y_range(chart: &Chart) -> (f64, f64) {
    let mut values: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .collect();
    if let Some((lo, hi)) = chart.band {
        values.extend([lo, hi]);
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1.0);
    ((lo - pad).floor(), (hi + pad).ceil())
}

/// The chart as SVG.
pub fn render(lang: Lang, chart: &Chart) -> Markup {
    let (lo, hi) = y_range(chart);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let longest = chart
        .series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0);
    let x = |i: usize| {
        if longest <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (longest - 1) as f64
        }
    };
    let ticks: Vec<f64> = (0..=4)
        .map(|i| lo + (hi - lo) * f64::from(i) / 4.0)
        .collect();
    let points = chart.series.iter().map(|s| s.values.len()).sum::<usize>();
    let desc = tf(
        lang,
        "charts.description",
        &[
            ("count", &points.to_string()),
            ("from", &chart.span.0),
            ("to", &chart.span.1),
        ],
    );
    html! {
        figure {
            figcaption {
                (chart.title)
                @if chart.series.len() > 1 || chart.band.is_some() {
                    " — "
                    @for (i, s) in chart.series.iter().enumerate() {
                        @if i > 0 { ", " }
                        span style={ "color:" (s.colour) } { (PreEscaped(if s.dashed { "╍ " } else { "━ " })) } (s.name)
                    }
                    @if let Some((band_lo, band_hi)) = chart.band {
                        ", " (tf(lang, "charts.target_range", &[
                            ("low", &format_number(lang, band_lo)),
                            ("high", &format_number(lang, band_hi)),
                        ]))
                    }
                }
            }
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-labelledby={ (chart.id) "-title " (chart.id) "-desc" } {
                title id={ (chart.id) "-title" } { (chart.title) }
                desc id={ (chart.id) "-desc" } { (desc) }
                @if let Some((band_lo, band_hi)) = chart.band {
                    rect x=(LEFT) y=(y(band_hi)) width=(plot_w) height=(y(band_lo) - y(band_hi))
                        fill="#cfe8d5" { title { (t(lang, "charts.target")) } }
                }
                @for tick in &ticks {
                    line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(*tick)) y2=(y(*tick)) stroke="#8a8a9a" stroke-width="0.5" {}
                    text x=(LEFT - 6.0) y=(y(*tick) + 5.0) text-anchor="end" { (format_number(lang, *tick)) }
                }
                text x="4" y="20" { (chart.unit) }
                text x=(LEFT) y=(HEIGHT - 10.0) { (chart.span.0) }
                text x=(WIDTH - RIGHT) y=(HEIGHT - 10.0) text-anchor="end" { (chart.span.1) }
                @for s in &chart.series {
                    @let path = s.values.iter().enumerate()
                        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                        .collect::<Vec<_>>().join(" ");
                    polyline points=(path) fill="none" stroke=(s.colour) stroke-width="3"
                        stroke-dasharray=(if s.dashed { "8 5" } else { "none" }) {}
                    @for (i, v) in s.values.iter().enumerate() {
                        circle cx={ (format!("{:.1}", x(i))) } cy={ (format!("{:.1}", y(*v))) } r="5" fill=(s.colour) {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_and_every_point_are_drawn_inside_the_plot() {
        let chart = Chart {
            id: "g".into(),
            title: "Glycémie".into(),
            unit: "mg/dL".into(),
            series: vec![Series {
                name: "x".into(),
                values: vec![95.0, 210.0, 60.0],
                colour: "#0b4f8a",
                dashed: false,
            }],
            band: Some(GLUCOSE_TARGET_MG_DL),
            span: ("a".into(), "b".into()),
        };
        let svg = render(Lang::Fr, &chart).into_string();
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("<rect"), "{svg}");
        let (lo, hi) = y_range(&chart);
        assert!(lo < 60.0 && hi > 210.0, "{lo} {hi}");
        assert!(svg.contains("70") && svg.contains("180"), "{svg}");
    }
}
