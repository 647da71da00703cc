//! The HTML page: the data as JSON in a `<script type="application/json">`, d3 and the
//! page's own script and style inlined, so that one file opens offline anywhere.

/// The d3 build the pages draw with (scales, axes, zoom, shapes), vendored from npm's
/// `d3@7.9.2` (ISC licence, `assets/LICENSE-d3`).
const D3: &str = include_str!("assets/d3.v7.9.2.min.js");
const STYLE: &str = include_str!("assets/page.css");

/// Which page: the script that draws the data.
#[derive(Clone, Copy, Debug)]
pub struct PageAssets {
    script: &'static str,
}

impl PageAssets {
    /// A run's timeline.
    pub const TIMELINE: PageAssets = PageAssets {
        script: include_str!("assets/timeline.js"),
    };
    /// A report's tables and plots.
    pub const REPORT: PageAssets = PageAssets {
        script: include_str!("assets/report.js"),
    };
}

/// Text safe inside an element (the title).
fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A page drawing `data_json` with `assets`. `</` in the data is written `<\/` (the same
/// JSON string) so that no value can close the script element it sits in.
pub fn html_page(title: &str, data_json: &str, assets: PageAssets) -> String {
    let data = data_json.replace("</", "<\\/");
    let mut page = String::with_capacity(D3.len() + data.len() + 16_384);
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(&format!("<title>{}</title>\n", escape_text(title)));
    page.push_str(&format!("<style>\n{STYLE}</style>\n</head>\n<body>\n"));
    page.push_str("<ul id=\"errors\" hidden></ul>\n<main id=\"app\"></main>\n");
    // Errors are caught before anything else runs, so that a test reading the DOM sees them.
    page.push_str(
        "<script>\nwindow.simErrors = [];\nwindow.addEventListener('error', function (e) {\n  \
         window.simErrors.push(String(e.message));\n  var l = document.getElementById('errors');\n  \
         var li = document.createElement('li'); li.textContent = String(e.message);\n  \
         l.appendChild(li); l.hidden = false;\n});\n</script>\n",
    );
    page.push_str(&format!("<script>\n{D3}\n</script>\n"));
    page.push_str(&format!(
        "<script id=\"sim-data\" type=\"application/json\">{data}</script>\n"
    ));
    page.push_str(&format!("<script>\n{}\n</script>\n", assets.script));
    page.push_str("</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_its_script_element() {
        let page = html_page(
            "a <b>",
            r#"{"x":"</script><script>alert(1)"}"#,
            PageAssets::TIMELINE,
        );
        assert!(page.contains(r#"{"x":"<\/script><script>alert(1)"}"#));
        assert!(page.contains("<title>a &lt;b&gt;</title>"));
        assert_eq!(page.matches("</script>").count(), 4);
    }
}
