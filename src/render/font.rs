//! The one font of lamp's pictures: DejaVu Sans, embedded in the binary (its licence:
//! assets/fonts/LICENSE), registered with plotters, a raster backend that sets its text
//! properly, and a way to write a label onto any RGB picture with it.
//!
//! Why a backend of our own: plotters' ab_glyph text drops each glyph's side bearing, so words
//! come out unevenly spaced ("anomal ous"). `Raster` is plotters' bitmap backend with text laid
//! out by ab_glyph directly: pen advance and kerning, each glyph at its own bounds, anti-aliased.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// The family name charts ask for (also what SVG output names, so browsers use a sans font).
pub const FAMILY: &str = "sans-serif";
/// Text sizes in pixels.
pub const TITLE: f64 = 19.0;
pub const NORMAL: f64 = 15.0;
pub const SMALL: f64 = 13.0;

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the font with plotters (once; later calls do nothing).
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is lamp's own file, checked by the tests: it parses.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS);
    });
}

/// The parsed font (lamp's own file: the tests show it parses).
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: std::sync::OnceLock<Option<FontRef<'static>>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(DEJAVU_SANS).ok())
        .as_ref()
}

/// One line of text laid out at `size` px: each glyph with its pen position (its top at 0), the
/// line's width and its height (ascent − descent).
struct Line {
    glyphs: Vec<ab_glyph::Glyph>,
    width: f32,
    height: f32,
}

fn layout(text: &str, size: f64) -> Option<Line> {
    let font = font()?;
    let scale = PxScale::from(size as f32);
    let scaled = font.as_scaled(scale);
    let (mut x, mut prev) = (0.0f32, None);
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scale, ab_glyph::point(x, scaled.ascent())));
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    Some(Line {
        glyphs,
        width: x,
        height: scaled.ascent() - scaled.descent(),
    })
}

/// The width in pixels of `text` at `size`.
pub fn text_width(text: &str, size: f64) -> u32 {
    layout(text, size).map_or(0, |l| l.width.ceil() as u32)
}

/// plotters' bitmap backend over an RGB buffer, with text set by `layout`.
pub struct Raster<'a>(BitMapBackend<'a>);

impl<'a> Raster<'a> {
    /// Draws into `buf`, `size.0` × `size.1` RGB pixels.
    pub fn with_buffer(buf: &'a mut [u8], size: (u32, u32)) -> Raster<'a> {
        register();
        Raster(BitMapBackend::with_buffer(buf, size))
    }
}

type BackendResult<E> = Result<(), DrawingErrorKind<E>>;

impl DrawingBackend for Raster<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> BackendResult<Self::ErrorType> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> BackendResult<Self::ErrorType> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> BackendResult<Self::ErrorType> {
        self.0.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> BackendResult<Self::ErrorType> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> BackendResult<Self::ErrorType> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> BackendResult<Self::ErrorType> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> BackendResult<Self::ErrorType> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> BackendResult<Self::ErrorType> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> BackendResult<Self::ErrorType> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok(layout(text, style.size())
            .map_or((0, 0), |l| (l.width.ceil() as u32, l.height.ceil() as u32)))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> BackendResult<Self::ErrorType> {
        let (Some(font), Some(line)) = (font(), layout(text, style.size())) else {
            return Ok(());
        };
        let colour = style.color();
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -line.width / 2.0,
            HPos::Right => -line.width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -line.height / 2.0,
            VPos::Bottom => -line.height,
        };
        let turn = style.transform();
        let mut result = Ok(());
        for g in line.glyphs {
            let Some(outline) = font.outline_glyph(g) else {
                continue;
            };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                if coverage <= 0.0 || result.is_err() {
                    return;
                }
                let x = (b.min.x + gx as f32 + dx).round() as i32;
                let y = (b.min.y + gy as f32 + dy).round() as i32;
                let (x, y) = turn.transform(x, y);
                let c = BackendColor {
                    alpha: colour.alpha * coverage.min(1.0) as f64,
                    rgb: colour.rgb,
                };
                result = self.0.draw_pixel((pos.0 + x, pos.1 + y), c);
            });
        }
        result
    }
}

/// Writes `text` onto `img` with its top-left corner at (x, y), `size` pixels high.
pub fn label(img: &mut RgbImage, x: i32, y: i32, text: &str, size: f64, c: Rgb<u8>) {
    let (w, h) = img.dimensions();
    let root = Raster::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
    let style = (FAMILY, size)
        .into_font()
        .color(&RGBColor(c[0], c[1], c[2]))
        .pos(Pos::new(HPos::Left, VPos::Top));
    // Text that does not fit is clipped by the backend; drawing cannot fail otherwise.
    let _ = root.draw(&Text::new(text.to_string(), (x, y), style));
    let _ = root.present();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_font_draws_text() {
        let mut img = image::RgbImage::from_pixel(120, 30, image::Rgb([255, 255, 255]));
        super::label(&mut img, 2, 2, "score 0.0123", 15.0, image::Rgb([0, 0, 0]));
        let dark = img.pixels().filter(|p| p[0] < 128).count();
        assert!(dark > 60, "{dark} dark pixels");
        let w = super::text_width("score 0.0123", 15.0);
        assert!((60..110).contains(&w), "{w}");
    }
}
