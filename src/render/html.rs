//! Self-contained HTML pages (the `report.html` of `eval` and `experiment`): one file with its
//! style, its charts as inline SVG and its pictures as PNG data URIs, so it opens in any browser
//! from disk or as a mail attachment, with no server and nothing fetched.

use base64::Engine as _;

/// Text made safe inside HTML elements and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px auto;\
max-width:1200px;padding:0 16px;color:#222}h1{font-size:26px}h2{font-size:20px;margin-top:32px;\
border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid \
#ccc;padding:4px 10px;text-align:left}th{background:#f3f3f3}td.n{text-align:right;\
font-variant-numeric:tabular-nums}.row{display:flex;flex-wrap:wrap;gap:0 40px;\
align-items:flex-start}.charts{display:grid;grid-template-columns:repeat(auto-fit,\
minmax(420px,1fr));gap:16px}.charts svg{width:100%;height:auto}.pictures{display:flex;\
flex-wrap:wrap;gap:12px 24px}figure{margin:8px 0}figure img{max-width:100%}figcaption{color:#555;\
font-size:13px;max-width:640px}.bad{color:#c62828;font-weight:bold}.ok{color:#2e7d32}\
.note{color:#555}.warn{background:#fff4e5;border-left:4px solid #e65100;padding:8px 12px}\
code{background:#f3f3f3;padding:1px 4px}";

/// An HTML page being written.
pub struct Page {
    body: String,
    title: String,
}

/// A table cell: text, a number (right-aligned), or HTML already escaped.
pub enum Cell {
    Text(String),
    Number(String),
    Html(String),
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page {
            body: format!("<h1>{}</h1>\n", escape(title)),
            title: title.into(),
        }
    }
    pub fn h2(&mut self, text: &str) {
        self.body += &format!("<h2>{}</h2>\n", escape(text));
    }
    /// A paragraph of plain text.
    pub fn p(&mut self, text: &str) {
        self.body += &format!("<p>{}</p>\n", escape(text));
    }
    /// A paragraph of HTML the caller built (escaping what it took from data).
    pub fn raw(&mut self, html: &str) {
        self.body += html;
        self.body += "\n";
    }
    /// A table; with an empty `header`, one without a header row.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<Cell>]) {
        self.body += "<table>";
        if !header.is_empty() {
            self.body += "<tr>";
            for h in header {
                self.body += &format!("<th>{}</th>", escape(h));
            }
            self.body += "</tr>";
        }
        self.body += "\n";
        for r in rows {
            self.body += "<tr>";
            for c in r {
                self.body += &match c {
                    Cell::Text(t) => format!("<td>{}</td>", escape(t)),
                    Cell::Number(t) => format!("<td class=\"n\">{}</td>", escape(t)),
                    Cell::Html(h) => format!("<td>{h}</td>"),
                };
            }
            self.body += "</tr>\n";
        }
        self.body += "</table>\n";
    }
    /// Charts side by side, each an SVG document.
    pub fn charts(&mut self, svgs: &[String]) {
        self.body += "<div class=\"charts\">\n";
        for s in svgs {
            // The SVG's own XML declaration is not allowed inside HTML.
            let s = s.trim_start();
            let s = if s.starts_with("<?xml") {
                s.split_once("?>").map_or(s, |(_, rest)| rest)
            } else {
                s
            };
            self.body += s;
            self.body += "\n";
        }
        self.body += "</div>\n";
    }
    /// Starts a row of items laid out side by side (sections, tables), up to `end_group`.
    pub fn begin_row(&mut self) {
        self.body += "<div class=\"row\">\n<div>\n";
    }
    /// The next item of the row.
    pub fn next_in_row(&mut self) {
        self.body += "</div>\n<div>\n";
    }
    /// Starts a group of figures that wrap, up to `end_pictures`.
    pub fn begin_pictures(&mut self) {
        self.body += "<div class=\"pictures\">\n";
    }
    pub fn end_pictures(&mut self) {
        self.body += "</div>\n";
    }
    /// Ends a row.
    pub fn end_group(&mut self) {
        self.body += "</div></div>\n";
    }
    /// A PNG picture, embedded, with a caption (HTML, escaped by the caller).
    pub fn figure(&mut self, png: &[u8], alt: &str, caption_html: &str) {
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        self.body += &format!(
            "<figure><img src=\"data:image/png;base64,{data}\" alt=\"{}\"><figcaption>{caption_html}</figcaption></figure>\n",
            escape(alt)
        );
    }
    /// The whole document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head>\n<body>\n{}</body></html>\n",
            escape(&self.title),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_data_and_embed_pictures() {
        let mut p = Page::new("a <b> & \"c\"");
        p.table(&["name"], &[vec![Cell::Text("x<script>.png".into())]]);
        p.charts(&["<?xml version=\"1.0\"?><svg></svg>".into()]);
        p.figure(b"\x89PNG", "alt", "cap");
        let html = p.finish();
        assert!(html.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(html.contains("x&lt;script&gt;.png") && !html.contains("<script>"));
        assert!(html.contains("<svg></svg>") && !html.contains("<?xml"));
        assert!(html.contains("data:image/png;base64,iVBORw=="));
    }
}
