//! Headless Chromium for the page tests: renders a page and hands back its DOM after the
//! scripts ran, what its console printed, and a screenshot for a person to look at.
//!
//! Chromium is Debian's `chromium` package, which `.ci/run` installs. Outside CI a missing
//! browser skips the page tests with a printed reason; under `CI=true` it is a failure, as
//! for the real servers ([`crate::real_server`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::real_server::in_ci;

/// The browser: `SIM_CHROMIUM` if set, else the first of Debian's names on `PATH`.
pub fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SIM_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "chromium is required under CI=true for the page tests: .ci/run installs \
             Debian's chromium package"
        );
        eprintln!("skipped: no chromium on PATH (install Debian's chromium package)");
    }
    found
}

/// A page as the browser left it.
pub struct Rendered {
    /// The DOM after the page's scripts ran, serialised.
    pub dom: String,
    /// The page's console lines. The pages never log: any line is a script error.
    pub console: Vec<String>,
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--disable-gpu",
        // Containers run tests as root, where Chromium's sandbox cannot start.
        "--no-sandbox",
        "--enable-logging=stderr",
        "--v=0",
        // Long enough for the page's scripts; virtual, so it costs no waiting.
        "--virtual-time-budget=10000",
        "--window-size=1600,1000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Renders the page at `page`, and saves a screenshot to `screenshot`.
pub fn render(browser: &Path, page: &Path, screenshot: &Path) -> Rendered {
    let url = format!("file://{}", page.display());
    let profile = page.with_extension("profile");
    let out = headless(browser, &profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let shot = headless(browser, &profile)
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(
        shot.status.success(),
        "chromium could not take a screenshot"
    );
    let _ = std::fs::remove_dir_all(&profile);
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
    }
}

impl Rendered {
    /// The value of `data-<name>` on `<body>`: what the page says it drew.
    pub fn body_data(&self, name: &str) -> Option<&str> {
        let body = &self.dom[self.dom.find("<body")?..];
        let tag = &body[..body.find('>')?];
        let key = format!("data-{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(&tag[start..start + tag[start..].find('"')?])
    }

    /// How many elements carry `class` among their classes.
    pub fn count_class(&self, class: &str) -> usize {
        self.dom
            .match_indices("class=\"")
            .filter(|(i, m)| {
                let rest = &self.dom[i + m.len()..];
                rest[..rest.find('"').unwrap_or(0)]
                    .split_whitespace()
                    .any(|c| c == class)
            })
            .count()
    }
}
