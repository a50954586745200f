//! Charts as PNG: the post-incident report's timeline (one row per runbook step under its
//! phase or component heading, a bar from start to end for what drbot ran, a mark for what a
//! person marked by hand, pending steps said so; declared, resolved and RTO lines) and a
//! drill's bars.
//!
//! Text is drawn from outline fonts embedded in the binary, so a title in Romanian, Chinese,
//! Korean or with emoji is drawn as written on a machine with no fonts at all: DejaVu Sans
//! (Latin, Greek, Cyrillic, symbols), WenQuanYi Micro Hei (CJK and Hangul) and Noto Emoji
//! (monochrome), tried in that order for each character; rasterised with `ab_glyph`.

use std::convert::Infallible;
use std::sync::OnceLock;

use ab_glyph::{Font as _, FontVec, GlyphId, PxScale, ScaleFont as _, point};
use chrono::{DateTime, Duration, Utc};
use drbot_state::{Incident, StepRecord, StepState};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle, Triangle};

use crate::context::Engine;
use crate::render;
use crate::runbook::Phase;

/// The chart's width: at Discord's preview width (about half) its 15 px text stays readable.
const WIDTH: u32 = 1000;
/// One step's row.
const ROW: u32 = 24;
/// Where the step labels end and the time axis begins.
const LEFT: i32 = 340;
/// Where the time axis ends (room right of it for a short note).
const RIGHT: i32 = WIDTH as i32 - 90;
/// Text sizes, in pixels.
const TITLE_PX: f32 = 22.0;
const TEXT_PX: f32 = 15.0;
const SMALL_PX: f32 = 13.0;

const INK: Rgb888 = Rgb888::new(25, 25, 25);
const GREY: Rgb888 = Rgb888::new(95, 95, 95);
const FAINT: Rgb888 = Rgb888::new(228, 228, 228);
const RED: Rgb888 = Rgb888::new(200, 40, 40);
const GREEN: Rgb888 = Rgb888::new(30, 130, 50);

/// An RGB image in memory.
struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![255; (width * height * 3) as usize],
        }
    }

    /// Mixes `c` into the pixel at (x, y) by `coverage` (0 to 1).
    fn blend(&mut self, x: i32, y: i32, c: Rgb888, coverage: f32) {
        if x < 0 || y < 0 || x as u32 >= self.width || y as u32 >= self.height {
            return;
        }
        let a = coverage.clamp(0.0, 1.0);
        let i = ((y as u32 * self.width + x as u32) * 3) as usize;
        for (k, v) in [c.r(), c.g(), c.b()].into_iter().enumerate() {
            let old = f32::from(self.pixels[i + k]);
            self.pixels[i + k] = (old + (f32::from(v) - old) * a).round() as u8;
        }
    }
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
            self.blend(p.x, p.y, c, 1.0);
        }
        Ok(())
    }
}

/// The embedded fonts, in the order they are tried for each character.
pub struct Fonts {
    faces: Vec<FontVec>,
}

/// The chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The PNG encoder failed.
    #[error("the PNG encoder failed: {0}")]
    Encode(#[from] png::EncodingError),
    /// An embedded font could not be read (a broken build).
    #[error("the chart's embedded font could not be read: {0}")]
    Font(String),
}

/// Characters that take no room (variation selectors, joiners): an emoji's `U+FE0F` is not
/// drawn as a box.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FE00}'..='\u{FE0F}')
        || ('\u{E0100}'..='\u{E01EF}').contains(&c)
}

fn unpack(xz: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(xz), &mut out)
        .map_err(|e| ChartError::Font(e.to_string()))?;
    Ok(out)
}

impl Fonts {
    fn load() -> Result<Fonts, ChartError> {
        let font = |data: Vec<u8>, index: u32| {
            FontVec::try_from_vec_and_index(data, index)
                .map_err(|e| ChartError::Font(e.to_string()))
        };
        Ok(Fonts {
            faces: vec![
                font(unpack(include_bytes!("../fonts/DejaVuSans.ttf.xz"))?, 0)?,
                font(unpack(include_bytes!("../fonts/wqy-microhei.ttc.xz"))?, 0)?,
                font(epaint_default_fonts::NOTO_EMOJI_REGULAR.to_vec(), 0)?,
            ],
        })
    }

    /// The fonts, read once.
    pub fn get() -> Result<&'static Fonts, ChartError> {
        static FONTS: OnceLock<Result<Fonts, String>> = OnceLock::new();
        FONTS
            .get_or_init(|| Fonts::load().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ChartError::Font(e.clone()))
    }

    /// The face and glyph that draw `c`: the first font that has it, else the first font's
    /// "missing" box.
    pub fn glyph(&self, c: char) -> (usize, GlyphId) {
        self.faces
            .iter()
            .enumerate()
            .map(|(i, f)| (i, f.glyph_id(c)))
            .find(|(_, g)| g.0 != 0)
            .unwrap_or((0, GlyphId(0)))
    }

    /// True when some embedded font has a glyph for `c`.
    pub fn covers(&self, c: char) -> bool {
        is_invisible(c) || self.glyph(c).1.0 != 0
    }

    fn glyphs<'a>(&'a self, text: &'a str) -> impl Iterator<Item = (usize, GlyphId)> + 'a {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .filter(|c| !is_invisible(*c))
            .map(|c| self.glyph(c))
    }

    /// How wide `text` is at `px`.
    pub fn width(&self, text: &str, px: f32) -> f32 {
        self.glyphs(text)
            .map(|(f, g)| self.faces[f].as_scaled(PxScale::from(px)).h_advance(g))
            .sum()
    }

    /// `text` cut with an ellipsis to fit `max` pixels at `px`.
    pub fn fit(&self, text: &str, px: f32, max: f32) -> String {
        let flat: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if self.width(&flat, px) <= max {
            return flat;
        }
        let room = max - self.width("…", px);
        let mut out = String::new();
        let mut used = 0.0;
        for c in flat.chars() {
            let w = self.width(&c.to_string(), px);
            if used + w > room {
                break;
            }
            used += w;
            out.push(c);
        }
        format!("{}…", out.trim_end())
    }

    /// Draws `text` with its baseline at `y`, starting at `x`; returns where it ends.
    fn draw(&self, c: &mut Canvas, text: &str, x: i32, y: i32, px: f32, colour: Rgb888) -> i32 {
        let mut pen = x as f32;
        for (f, g) in self.glyphs(text).collect::<Vec<_>>() {
            let face = &self.faces[f];
            let scaled = face.as_scaled(PxScale::from(px));
            let glyph = g.with_scale_and_position(px, point(pen, y as f32));
            if let Some(outline) = face.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    c.blend(
                        b.min.x as i32 + gx as i32,
                        b.min.y as i32 + gy as i32,
                        colour,
                        cov,
                    );
                });
            }
            pen += scaled.h_advance(g);
        }
        pen.ceil() as i32
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
        StepState::Pending => Rgb888::new(200, 200, 200),
    }
}

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

fn line(c: &mut Canvas, from: (i32, i32), to: (i32, i32), colour: Rgb888, width: u32) {
    let _ = Line::new(Point::new(from.0, from.1), Point::new(to.0, to.1))
        .into_styled(PrimitiveStyle::with_stroke(colour, width))
        .draw(c);
}

/// A vertical dashed line.
fn dashed(c: &mut Canvas, x: i32, top: i32, bottom: i32, colour: Rgb888) {
    let mut y = top;
    while y < bottom {
        line(c, (x, y), (x, (y + 5).min(bottom)), colour, 2);
        y += 9;
    }
}

fn rect(c: &mut Canvas, x: i32, y: i32, w: i32, h: i32, colour: Rgb888) {
    let _ = Rectangle::new(
        Point::new(x, y),
        Size::new(w.max(1) as u32, h.max(1) as u32),
    )
    .into_styled(PrimitiveStyle::with_fill(colour))
    .draw(c);
}

/// A diamond centred on (x, y): a step marked by hand, at the time it was marked.
fn diamond(c: &mut Canvas, x: i32, y: i32, r: i32, colour: Rgb888) {
    for (a, b) in [((x, y - r), (x, y + r)), ((x, y + r), (x, y - r))] {
        let side = if a.1 < b.1 { x - r } else { x + r };
        let _ = Triangle::new(
            Point::new(a.0, a.1),
            Point::new(b.0, b.1),
            Point::new(side, y),
        )
        .into_styled(PrimitiveStyle::with_fill(colour))
        .draw(c);
    }
    for (a, b) in [
        ((x, y - r), (x + r, y)),
        ((x + r, y), (x, y + r)),
        ((x, y + r), (x - r, y)),
        ((x - r, y), (x, y - r)),
    ] {
        line(c, a, b, INK, 1);
    }
}

/// Horizontal bars in panels (a drill's steps against its RTO; drills' restore times and
/// RPOs against their targets), each panel on its own scale; returns PNG bytes.
pub fn bars_png(title: &str, panels: &[Panel]) -> Result<Vec<u8>, ChartError> {
    let f = Fonts::get()?;
    let head = 28u32;
    let top = 48u32;
    let height = top
        + panels
            .iter()
            .map(|p| head + p.rows.len().max(1) as u32 * ROW + 18)
            .sum::<u32>()
        + 10;
    let mut c = Canvas::new(WIDTH, height);
    let title = f.fit(title, TITLE_PX, (WIDTH - 20) as f32);
    f.draw(&mut c, &title, 10, 30, TITLE_PX, INK);
    let mut y = top as i32;
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
        let end = RIGHT - 20;
        let x = |secs: i64| LEFT + ((end - LEFT) as f64 * (secs.max(0) as f64 / max as f64)) as i32;
        let scale = format!(
            "{} (scale 0 to {})",
            p.name,
            render::duration(Duration::seconds(max))
        );
        f.draw(&mut c, &scale, 8, y + 18, TEXT_PX, INK);
        y += head as i32;
        let top = y;
        for (label, secs, col) in &p.rows {
            let label = f.fit(label, TEXT_PX, (LEFT - 16) as f32);
            f.draw(&mut c, &label, 8, y + 17, TEXT_PX, INK);
            match secs {
                Some(secs) => {
                    let x1 = x(*secs);
                    rect(
                        &mut c,
                        LEFT,
                        y + 4,
                        (x1 - LEFT).max(2),
                        ROW as i32 - 8,
                        *col,
                    );
                    let took = render::duration(Duration::seconds(*secs));
                    f.draw(&mut c, &took, x1 + 5, y + 17, SMALL_PX, GREY);
                }
                None => {
                    f.draw(&mut c, "not reached", LEFT, y + 17, SMALL_PX, *col);
                }
            }
            y += ROW as i32;
        }
        if p.rows.is_empty() {
            f.draw(&mut c, "(nothing measured)", LEFT, y + 17, SMALL_PX, GREY);
            y += ROW as i32;
        }
        if let Some(t) = p.target {
            let tx = x(t);
            line(&mut c, (tx, top - 4), (tx, y), RED, 2);
            let label = format!("target {}", render::duration(Duration::seconds(t)));
            f.draw(&mut c, &label, (tx - 40).max(LEFT), top - 6, SMALL_PX, RED);
        }
        y += 18;
    }
    encode(&c)
}

/// Tick spacing for a span: the smallest of 1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 6, 12 hours
/// or whole days that gives at most six ticks, so no two ticks share a label.
pub fn tick_step(span: Duration) -> Duration {
    let minutes = span.num_minutes().max(1);
    [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720]
        .into_iter()
        .chain((1..).map(|d| d * 1440))
        .find(|step| minutes / step <= 6)
        .map_or(Duration::days(1), Duration::minutes)
}

/// One row of the timeline chart.
enum Row<'a> {
    /// A phase's or component's heading, with the component's RTO when it has one.
    Heading(String, Option<Duration>),
    /// A step: its number and record.
    Step(usize, &'a StepRecord),
}

/// The rows: each phase under its heading; in the full scenario, each component's recovery
/// steps under the component's heading with its own RTO.
fn rows<'a>(engine: &Engine, incident: &'a Incident) -> Vec<Row<'a>> {
    let scenario = engine.runbook().of(incident);
    let grouped = scenario.filter(|s| s.grouped());
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    for (n, s) in incident.steps.iter().enumerate() {
        let phase = scenario
            .and_then(|sc| sc.step(&s.id))
            .map_or(Phase::Recovery, |st| st.phase);
        let heading = match (phase, grouped.and_then(|sc| sc.group_of(&s.id))) {
            (Phase::Recovery, Some(group)) => {
                (group.heading.to_string(), group.rto(engine.config()))
            }
            (phase, _) => (phase.title().to_string(), None),
        };
        if last.as_deref() != Some(heading.0.as_str()) {
            last = Some(heading.0.clone());
            out.push(Row::Heading(heading.0, heading.1));
        }
        out.push(Row::Step(n + 1, s));
    }
    out
}

/// Draws the incident's timeline; returns PNG bytes.
pub fn timeline_png(engine: &Engine, incident: &Incident) -> Result<Vec<u8>, ChartError> {
    let f = Fonts::get()?;
    let now = engine.now();
    let start = incident.declared_at;
    let end = incident.resolved_at.unwrap_or(now);
    let last_step = incident
        .steps
        .iter()
        .filter_map(|s| s.at)
        .max()
        .unwrap_or(start);
    let rto = engine
        .runbook()
        .of(incident)
        .map(|sc| sc.rto(engine.config()));
    let mut span = (end.max(last_step) - start).max(Duration::minutes(5));
    // The RTO is drawn when it falls near the work; far past it, it is said in words.
    if let Some(rto) = rto
        && rto <= span * 2
    {
        span = span.max(rto);
    }
    let step = tick_step(span);
    span = step * ((span.num_seconds() + step.num_seconds() - 1) / step.num_seconds()) as i32;

    let rows = rows(engine, incident);
    let top = 112i32;
    let bottom = top + rows.len() as i32 * ROW as i32;
    let height = (bottom + 44) as u32;
    let mut c = Canvas::new(WIDTH, height);
    let x = |t: DateTime<Utc>| -> i32 {
        let frac = (t - start).num_seconds() as f64 / span.num_seconds().max(1) as f64;
        LEFT + ((RIGHT - LEFT) as f64 * frac.clamp(0.0, 1.0)).round() as i32
    };

    // Title on its own line, cut to the width; what it is below it; the legend on a third.
    let title = format!("{} “{}”", incident.id, incident.title);
    let title = f.fit(&title, TITLE_PX, (WIDTH - 20) as f32);
    f.draw(&mut c, &title, 10, 30, TITLE_PX, INK);
    let status = match incident.resolved_at {
        Some(at) => format!(
            "resolved {} after {}",
            render::minute(at),
            render::duration(at - start)
        ),
        None => format!(
            "{}, {} so far",
            incident.status.as_str(),
            render::duration(now - start)
        ),
    };
    let rto_words = match rto {
        Some(r) if r > span => format!(" · RTO {} (past the chart's end)", render::duration(r)),
        Some(r) => format!(" · RTO {}", render::duration(r)),
        None => String::new(),
    };
    let sub = format!(
        "{} · {} · declared {} · {status}{rto_words}",
        incident.severity,
        incident.scenario,
        render::minute(start)
    );
    let sub = f.fit(&sub, TEXT_PX, (WIDTH - 20) as f32);
    f.draw(&mut c, &sub, 10, 56, TEXT_PX, GREY);
    let mut lx = 10;
    for st in [
        StepState::Done,
        StepState::Skipped,
        StepState::Failed,
        StepState::Interrupted,
        StepState::Running,
    ] {
        rect(&mut c, lx, 71, 12, 12, colour(st));
        lx = f.draw(&mut c, st.as_str(), lx + 16, 82, SMALL_PX, GREY) + 14;
    }
    diamond(&mut c, lx + 6, 77, 6, colour(StepState::Done));
    lx = f.draw(&mut c, "marked by hand", lx + 16, 82, SMALL_PX, GREY) + 14;
    rect(&mut c, lx, 76, 22, 2, FAINT);
    f.draw(&mut c, "pending", lx + 26, 82, SMALL_PX, GREY);

    // Grid and time axis: time since the declaration.
    let mut t = Duration::zero();
    while t <= span {
        let gx = x(start + t);
        line(&mut c, (gx, top - 4), (gx, bottom), FAINT, 1);
        let label = if t.is_zero() {
            "0".to_string()
        } else {
            format!("+{}", render::duration(t))
        };
        let w = f.width(&label, SMALL_PX) as i32;
        f.draw(&mut c, &label, gx - w / 2, bottom + 18, SMALL_PX, GREY);
        t += step;
    }
    f.draw(
        &mut c,
        "time since declared",
        LEFT,
        bottom + 36,
        SMALL_PX,
        GREY,
    );

    // Declared, resolved (or now) and RTO lines.
    line(&mut c, (LEFT, top - 14), (LEFT, bottom), INK, 2);
    f.draw(&mut c, "declared", LEFT + 4, top - 6, SMALL_PX, INK);
    match incident.resolved_at {
        Some(at) => {
            let rx = x(at);
            dashed(&mut c, rx, top - 14, bottom, GREEN);
            let label = "resolved";
            let w = f.width(label, SMALL_PX) as i32;
            f.draw(
                &mut c,
                label,
                (rx - w - 4).max(LEFT + 70),
                top - 6,
                SMALL_PX,
                GREEN,
            );
        }
        None => {
            let nx = x(now);
            dashed(&mut c, nx, top - 14, bottom, colour(StepState::Running));
            f.draw(
                &mut c,
                "now",
                nx - 30,
                top - 6,
                SMALL_PX,
                colour(StepState::Running),
            );
        }
    }
    if let Some(r) = rto.filter(|r| *r <= span) {
        let rx = x(start + r);
        line(&mut c, (rx, top - 14), (rx, bottom), RED, 2);
        f.draw(
            &mut c,
            &format!("RTO {}", render::duration(r)),
            rx + 4,
            top - 6,
            SMALL_PX,
            RED,
        );
    }

    for (i, row) in rows.iter().enumerate() {
        let y = top + i as i32 * ROW as i32;
        match row {
            Row::Heading(name, component_rto) => {
                rect(
                    &mut c,
                    0,
                    y + 2,
                    WIDTH as i32,
                    ROW as i32 - 3,
                    Rgb888::new(243, 245, 248),
                );
                f.draw(&mut c, name, 8, y + 18, TEXT_PX, INK);
                if let Some(r) = component_rto {
                    if *r <= span {
                        let rx = x(start + *r);
                        line(&mut c, (rx, y + 3), (rx, y + ROW as i32 - 2), RED, 2);
                        let label = format!("{} RTO", render::duration(*r));
                        f.draw(&mut c, &label, rx + 4, y + 17, SMALL_PX, RED);
                    } else {
                        let label = format!("RTO {}", render::duration(*r));
                        f.draw(&mut c, &label, LEFT + 4, y + 17, SMALL_PX, RED);
                    }
                }
            }
            Row::Step(n, s) => {
                let title = engine
                    .runbook()
                    .step(incident, &s.id)
                    .map_or(s.id.as_str(), |st| st.title);
                let label = f.fit(&format!("{n:>2}. {title}"), TEXT_PX, (LEFT - 24) as f32);
                f.draw(&mut c, &label, 18, y + 17, TEXT_PX, INK);
                draw_step(&mut c, f, s, y, &x, now);
            }
        }
    }
    encode(&c)
}

/// A step's mark: a bar from start to end for what drbot ran (to now while it runs), a
/// diamond at the time for what a person marked, a faint line and "pending" for the rest.
fn draw_step(
    c: &mut Canvas,
    f: &Fonts,
    s: &StepRecord,
    y: i32,
    x: &dyn Fn(DateTime<Utc>) -> i32,
    now: DateTime<Utc>,
) {
    let mid = y + ROW as i32 / 2;
    let fill = colour(s.state);
    match (s.state, s.started_at, s.at) {
        (StepState::Pending, _, _) => {
            rect(c, LEFT, mid - 1, RIGHT - LEFT, 2, FAINT);
            f.draw(c, "pending", RIGHT + 6, y + 17, SMALL_PX, GREY);
        }
        (StepState::Running, Some(a), _) => {
            let (x0, x1) = (x(a), x(now));
            rect(c, x0, y + 5, (x1 - x0).max(3), ROW as i32 - 10, fill);
            f.draw(c, "running", RIGHT + 6, y + 17, SMALL_PX, fill);
        }
        (_, Some(a), Some(b)) if !s.by_hand && b >= a => {
            let (x0, x1) = (x(a), x(b));
            rect(c, x0, y + 5, (x1 - x0).max(3), ROW as i32 - 10, fill);
            f.draw(
                c,
                &render::duration(b - a),
                RIGHT + 6,
                y + 17,
                SMALL_PX,
                GREY,
            );
        }
        (_, _, Some(at)) => {
            diamond(c, x(at), mid, 7, fill);
            let how = if s.by_hand {
                "by hand"
            } else {
                s.state.as_str()
            };
            f.draw(c, how, RIGHT + 6, y + 17, SMALL_PX, GREY);
        }
        (_, _, None) => {
            f.draw(c, s.state.as_str(), RIGHT + 6, y + 17, SMALL_PX, fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_in_a_title_has_a_glyph() {
        let f = Fonts::get().expect("fonts");
        let text = "Media bucket șters: fișiere ăâîșț ŞŢ · 数据库故障 データ消失 한국어 장애 · \
                    🔥🙏✅❌⚠️🚨 · Привет Ελλάδα · “quotes” → ✓ …";
        let missing: String = text.chars().filter(|c| !f.covers(*c)).collect();
        assert_eq!(missing, "", "no glyph for these");
    }

    #[test]
    fn long_text_is_cut_to_its_width() {
        let f = Fonts::get().expect("fonts");
        let long = "数据库".repeat(60);
        let cut = f.fit(&long, TEXT_PX, 300.0);
        assert!(cut.ends_with('…'), "{cut}");
        assert!(
            f.width(&cut, TEXT_PX) <= 300.0,
            "{}",
            f.width(&cut, TEXT_PX)
        );
        assert_eq!(f.fit("short", TEXT_PX, 300.0), "short");
        assert_eq!(f.fit("a\nb", TEXT_PX, 300.0), "a b");
    }

    #[test]
    fn ticks_never_repeat_a_label() {
        for minutes in [1, 4, 5, 7, 29, 48, 61, 119, 240, 241, 1000, 3000, 20000] {
            let span = Duration::minutes(minutes);
            let step = tick_step(span);
            let count = span.num_minutes() / step.num_minutes();
            assert!(count <= 6, "{minutes}: {count} ticks");
            let labels: Vec<String> = (0..=count)
                .map(|k| render::duration(step * k as i32))
                .collect();
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(labels, unique, "{minutes}");
        }
    }

    #[test]
    fn text_is_drawn_as_its_glyphs_not_as_boxes() {
        let f = Fonts::get().expect("fonts");
        let ink = |text: &str| {
            let mut c = Canvas::new(200, 40);
            f.draw(&mut c, text, 5, 30, 24.0, INK);
            c.pixels
        };
        // A character no font has is the first font's box: the same for any two of them.
        let tofu = ink("\u{10FFFD}");
        assert_eq!(tofu, ink("\u{10FFFC}"));
        for word in ["数", "한", "ș", "🔥"] {
            let drawn = ink(word);
            assert_ne!(drawn, tofu, "{word} drawn as a box");
            assert!(drawn.iter().any(|p| *p < 128), "{word} drew nothing");
        }
    }
}
