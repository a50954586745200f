//! The post-incident report's timeline chart: a PNG with one row per runbook step, its bar
//! from start to finish (or a mark when it was ticked off), coloured by outcome, against the
//! incident's duration and its RTO. Drawn with embedded-graphics' built-in bitmap font, so it
//! needs no system fonts.

use std::convert::Infallible;

use chrono::{DateTime, Duration, Utc};
use drbot_state::{Incident, StepState};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::Text;

use crate::engine::Engine;
use crate::render;
use crate::runbook::{runbook_step, scenario_of};

const WIDTH: u32 = 900;
const ROW: u32 = 18;
const TOP: u32 = 40;
const BOTTOM: u32 = 40;
const LEFT: i32 = 260;
const RIGHT: i32 = 860;

/// An RGB image in memory.
struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let i = ((p.y as u32 * self.width + p.x as u32) * 3) as usize;
                self.pixels[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

/// The colour of a step's outcome.
pub fn colour(state: StepState) -> Rgb888 {
    match state {
        StepState::Done => Rgb888::new(46, 160, 67),
        StepState::Skipped => Rgb888::new(150, 150, 150),
        StepState::Failed => Rgb888::new(200, 40, 40),
        StepState::Interrupted => Rgb888::new(230, 140, 20),
        StepState::Running => Rgb888::new(40, 110, 220),
        StepState::Pending => Rgb888::new(220, 220, 220),
    }
}

/// The bitmap font has ASCII only.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// The chart could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("the PNG encoder failed: {0}")]
pub struct ChartError(#[from] png::EncodingError);

/// One panel of a bar chart: bars in seconds against an optional target.
pub struct Panel {
    /// Its heading.
    pub name: String,
    /// The target, in seconds: a red line.
    pub target: Option<i64>,
    /// Bars: label, seconds (none: not measured, said in words), colour.
    pub rows: Vec<(String, Option<i64>, Rgb888)>,
}

/// A passing or failing bar.
pub fn outcome_colour(ok: Option<bool>) -> Rgb888 {
    match ok {
        Some(true) => colour(StepState::Done),
        Some(false) => colour(StepState::Failed),
        None => colour(StepState::Skipped),
    }
}

fn encode(c: &Canvas) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, c.width, c.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&c.pixels)?;
    }
    Ok(out)
}

/// Horizontal bars in panels (a drill's steps against its RTO; drills' restore times and
/// RPOs against their targets), each panel on its own scale; returns PNG bytes.
pub fn bars_png(title: &str, panels: &[Panel]) -> Result<Vec<u8>, ChartError> {
    let head = 22u32;
    let height = TOP
        + panels
            .iter()
            .map(|p| head + p.rows.len().max(1) as u32 * ROW + 16)
            .sum::<u32>()
        + 10;
    let mut c = Canvas {
        width: WIDTH,
        height,
        pixels: vec![255; (WIDTH * height * 3) as usize],
    };
    let black = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let grey = MonoTextStyle::new(&FONT_6X10, Rgb888::new(90, 90, 90));
    let red = Rgb888::new(200, 40, 40);
    let _ = Text::new(
        &ascii(&render::truncate(title, 140)),
        Point::new(10, 18),
        black,
    )
    .draw(&mut c);
    let mut y = TOP as i32;
    for p in panels {
        let max = p
            .rows
            .iter()
            .filter_map(|r| r.1)
            .chain(p.target)
            .max()
            .unwrap_or(1)
            .max(1);
        // Room right of the longest bar for its value.
        let end = RIGHT - 50;
        let x = |secs: i64| LEFT + ((end - LEFT) as f64 * (secs.max(0) as f64 / max as f64)) as i32;
        let scale = format!(
            "{} (scale 0 to {})",
            p.name,
            render::duration(Duration::seconds(max))
        );
        let _ = Text::new(&ascii(&scale), Point::new(8, y + 12), black).draw(&mut c);
        y += head as i32;
        let top = y;
        for (label, secs, col) in &p.rows {
            let _ = Text::new(
                &ascii(&render::truncate(label, 40)),
                Point::new(8, y + 12),
                black,
            )
            .draw(&mut c);
            match secs {
                Some(secs) => {
                    let x1 = x(*secs);
                    let _ = Rectangle::new(
                        Point::new(LEFT, y + 3),
                        Size::new((x1 - LEFT).max(2) as u32, ROW - 6),
                    )
                    .into_styled(PrimitiveStyle::with_fill(*col))
                    .draw(&mut c);
                    let _ = Text::new(
                        &render::duration(Duration::seconds(*secs)),
                        Point::new(x1 + 4, y + 12),
                        grey,
                    )
                    .draw(&mut c);
                }
                None => {
                    let _ = Text::new(
                        "not reached",
                        Point::new(LEFT, y + 12),
                        MonoTextStyle::new(&FONT_6X10, *col),
                    )
                    .draw(&mut c);
                }
            }
            y += ROW as i32;
        }
        if p.rows.is_empty() {
            let _ = Text::new("(nothing measured)", Point::new(LEFT, y + 12), grey).draw(&mut c);
            y += ROW as i32;
        }
        if let Some(t) = p.target {
            let tx = x(t);
            let _ = Line::new(Point::new(tx, top - 4), Point::new(tx, y))
                .into_styled(PrimitiveStyle::with_stroke(red, 2))
                .draw(&mut c);
            let _ = Text::new(
                &format!("target {}", render::duration(Duration::seconds(t))),
                Point::new((tx - 40).max(LEFT), top - 6),
                MonoTextStyle::new(&FONT_6X10, red),
            )
            .draw(&mut c);
        }
        y += 16;
    }
    encode(&c)
}

/// Draws the chart; returns PNG bytes.
pub fn timeline_png(engine: &Engine, incident: &Incident) -> Result<Vec<u8>, ChartError> {
    let start = incident.declared_at;
    let end = incident.resolved_at.unwrap_or_else(|| engine.now());
    let span = (end - start).max(Duration::minutes(1));
    let rows = incident.steps.len() as u32;
    let height = TOP + rows * ROW + BOTTOM;
    let mut c = Canvas {
        width: WIDTH,
        height,
        pixels: vec![255; (WIDTH * height * 3) as usize],
    };
    let x = |t: DateTime<Utc>| -> i32 {
        let f = (t - start).num_seconds() as f64 / span.num_seconds() as f64;
        LEFT + ((RIGHT - LEFT) as f64 * f.clamp(0.0, 1.0)) as i32
    };
    let black = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let grey = MonoTextStyle::new(&FONT_6X10, Rgb888::new(90, 90, 90));
    let title = format!(
        "{} {} - steps over {} ({} {})",
        incident.id,
        ascii(&render::truncate(&incident.title, 60)),
        render::duration(end - start),
        incident.severity,
        incident.scenario
    );
    let _ = Text::new(&title, Point::new(10, 18), black).draw(&mut c);
    // Legend.
    let mut lx = 560;
    for st in [
        StepState::Done,
        StepState::Skipped,
        StepState::Failed,
        StepState::Interrupted,
    ] {
        let _ = Rectangle::new(Point::new(lx, 10), Size::new(8, 8))
            .into_styled(PrimitiveStyle::with_fill(colour(st)))
            .draw(&mut c);
        let _ = Text::new(st.as_str(), Point::new(lx + 11, 18), grey).draw(&mut c);
        lx += 12 + 6 * st.as_str().len() as i32 + 14;
    }
    let bottom = (TOP + rows * ROW) as i32;
    // Time grid.
    for q in 0..=4 {
        let t = start + span * q / 4;
        let gx = x(t);
        let _ = Line::new(Point::new(gx, TOP as i32 - 6), Point::new(gx, bottom))
            .into_styled(PrimitiveStyle::with_stroke(Rgb888::new(225, 225, 225), 1))
            .draw(&mut c);
        let label = render::duration(t - start);
        let _ = Text::new(&label, Point::new(gx - 6, bottom + 14), grey).draw(&mut c);
    }
    // The RTO, when it falls inside the chart.
    if let Some(sc) = scenario_of(incident) {
        let rto = Duration::minutes(engine.config().rto_mins(sc) as i64);
        if rto <= span {
            let rx = x(start + rto);
            let _ = Line::new(Point::new(rx, TOP as i32 - 6), Point::new(rx, bottom))
                .into_styled(PrimitiveStyle::with_stroke(Rgb888::new(200, 40, 40), 2))
                .draw(&mut c);
            let _ = Text::new(
                "RTO",
                Point::new(rx + 3, TOP as i32 - 8),
                MonoTextStyle::new(&FONT_6X10, Rgb888::new(200, 40, 40)),
            )
            .draw(&mut c);
        }
    }
    for (n, s) in incident.steps.iter().enumerate() {
        let y = (TOP + n as u32 * ROW) as i32;
        let title = runbook_step(incident, &s.id).map_or(s.id.as_str(), |st| st.title);
        let label = format!("{:>2}. {}", n + 1, render::truncate(&ascii(title), 38));
        let _ = Text::new(&label, Point::new(8, y + 12), black).draw(&mut c);
        let fill = PrimitiveStyle::with_fill(colour(s.state));
        match (s.started_at, s.at) {
            (Some(a), Some(b)) if b > a => {
                let (x0, x1) = (x(a), x(b));
                let _ = Rectangle::new(
                    Point::new(x0, y + 3),
                    Size::new((x1 - x0).max(3) as u32, ROW - 6),
                )
                .into_styled(fill)
                .draw(&mut c);
            }
            (_, Some(at)) => {
                let _ = Rectangle::new(Point::new(x(at) - 3, y + 3), Size::new(7, ROW - 6))
                    .into_styled(fill)
                    .draw(&mut c);
            }
            (_, None) => {}
        }
    }
    encode(&c)
}
