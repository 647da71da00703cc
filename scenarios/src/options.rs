//! A scenario's own options as command-line arguments, both ways: clap parses them (each
//! scenario's `Options` is a `clap::Args` struct), and [`args`] prints a plan's options
//! back as the arguments that give them, so that a printed replay line reproduces the run.

use serde::Serialize;
use serde_json::Value;

/// The arguments that set `options` where they differ from the defaults, as a user would
/// type them: `--items 20 --users 200`. A field is one `--field-name`
/// (clap's derive names it so) taking a number or a string, a flag when it is a `bool`,
/// repeated for a list, absent when it is `None`; nested structs have no argument form.
pub fn args<O: Serialize + Default>(options: &O) -> Vec<String> {
    let (Ok(Value::Object(now)), Ok(Value::Object(default))) = (
        serde_json::to_value(options),
        serde_json::to_value(O::default()),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (field, value) in now {
        if default.get(&field) == Some(&value) {
            continue;
        }
        let flag = format!("--{}", field.replace('_', "-"));
        let values = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for value in values {
            match value {
                Value::Bool(true) => out.push(flag.clone()),
                Value::Bool(false) | Value::Null | Value::Object(_) | Value::Array(_) => {}
                Value::Number(n) => out.extend([flag.clone(), n.to_string()]),
                Value::String(s) => out.extend([flag.clone(), s]),
            }
        }
    }
    out
}

/// `word` as one word of a POSIX shell command line: unchanged when it is plain, else in
/// single quotes.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A positive, finite rate (`--spawn-rate`), for clap's `value_parser`.
pub fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("expected a positive number".into()),
    }
}
