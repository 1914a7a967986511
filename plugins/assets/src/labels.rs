//! Printable QR label sheets: a PNG the size of an A4 page at 150 dpi,
//! 3 × 8 labels, each a QR code of `ts:assets:<card id>` (what the phone
//! scanner resolves through `/lookup`) and the asset number beneath it.

use qrcode::{Color, QrCode};
use tianshan_sdk::prelude::*;

use crate::cards::cards;
use crate::common::require;
use crate::model::Card;

pub fn routes(router: Router) -> Router {
    router.get("/labels", sheet)
}

const PAGE_W: usize = 1240;
const PAGE_H: usize = 1754;
const COLS: usize = 3;
const ROWS: usize = 8;
pub const PER_SHEET: usize = COLS * ROWS;

/// `?ids=a,b,c` (at most 24: one sheet), answered as image/png.
fn sheet(req: &Request) -> Result<Response> {
    require("assets.view")?;
    let ids: Vec<String> = req
        .query_param("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() || ids.len() > PER_SHEET {
        return Err(Error::validation(
            "ids",
            format!("name 1 to {PER_SHEET} card ids (one sheet)"),
        )
        .with_code("label_count")
        .with_param("max", PER_SHEET));
    }
    let mut labels = Vec::with_capacity(ids.len());
    for id in &ids {
        let card = cards().fetch::<Card>(id)?;
        // Numbers repeat across units: the label carries the unit's code
        // (its unified social credit code) under the number.
        let unit = card.org.strip_prefix("org-").unwrap_or(&card.org);
        labels.push((
            format!("ts:assets:{}", card.id),
            format!("{}\n{}", card.data.asset_no, unit.to_ascii_uppercase()),
        ));
    }
    Ok(Response::bytes("image/png", render(&labels)?))
}

/// Draws the sheet: white page, black modules.
pub fn render(labels: &[(String, String)]) -> Result<Vec<u8>> {
    let mut page = vec![255u8; PAGE_W * PAGE_H];
    let (cell_w, cell_h) = (PAGE_W / COLS, PAGE_H / ROWS);
    for (i, (payload, text)) in labels.iter().enumerate().take(PER_SHEET) {
        let (x0, y0) = ((i % COLS) * cell_w, (i / COLS) * cell_h);
        let code = QrCode::new(payload.as_bytes())
            .map_err(|e| Error::internal(format!("QR code: {e}")))?;
        let width = code.width();
        let colors = code.to_colors();
        let scale = ((cell_h - 60) / (width + 8)).max(1);
        let qx = x0 + (cell_w - (width + 8) * scale) / 2 + 4 * scale;
        let qy = y0 + 10 + 4 * scale;
        for (m, color) in colors.iter().enumerate() {
            if *color == Color::Dark {
                fill(
                    &mut page,
                    qx + (m % width) * scale,
                    qy + (m / width) * scale,
                    scale,
                    scale,
                );
            }
        }
        // The number large, then smaller lines (the unit's code).
        let mut y = qy + (width + 4) * scale + 4;
        for (n, line) in text.lines().enumerate() {
            let size = if n == 0 { 3 } else { 2 };
            let text_w = line.len() * 6 * size;
            draw_text(
                &mut page,
                x0 + cell_w.saturating_sub(text_w) / 2,
                y,
                line,
                size,
            );
            y += 9 * size;
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, PAGE_W as u32, PAGE_H as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::internal(format!("PNG: {e}")))?;
        writer
            .write_image_data(&page)
            .map_err(|e| Error::internal(format!("PNG: {e}")))?;
    }
    Ok(out)
}

fn fill(page: &mut [u8], x: usize, y: usize, w: usize, h: usize) {
    for row in y..(y + h).min(PAGE_H) {
        for col in x..(x + w).min(PAGE_W) {
            page[row * PAGE_W + col] = 0;
        }
    }
}

/// A 5 × 7 font for what asset numbers hold (digits, letters, '-', '.').
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        _ => [0; 7],
    }
}

fn draw_text(page: &mut [u8], x: usize, y: usize, text: &str, scale: usize) {
    for (i, c) in text.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    fill(
                        page,
                        x + (i * 6 + col) * scale,
                        y + row * scale,
                        scale,
                        scale,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheet_is_an_a4_png_with_dark_modules() {
        let png =
            render(&[("ts:assets:zc2026000001.org-x".into(), "ZC2026000001".into())]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // Width and height from the IHDR chunk.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1240);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 1754);
        // An empty sheet compresses far smaller than one with a code.
        let empty = render(&[]).unwrap();
        assert!(png.len() > empty.len() + 500);
    }

    /// Issue 15.4: a label names its unit under the number, so two units'
    /// ZC2026000001 are told apart.
    #[test]
    fn a_label_carries_the_units_code() {
        let payload = "ts:assets:zc2026000001.org-x".to_string();
        let bare = render(&[(payload.clone(), "ZC2026000001".into())]).unwrap();
        let with_unit = render(&[(payload, "ZC2026000001\n11650100MB0000001T".into())]).unwrap();
        assert!(with_unit.len() > bare.len(), "the second line is drawn");
    }
}
