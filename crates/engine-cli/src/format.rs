//! Output as Docker prints it: `--format` templates (the `{{.Field}}`, `{{json .}}` and
//! `table` forms scripts use), tables aligned as Go's tabwriter aligns Docker's, sizes in
//! go-units' decimal units and ages in its words.
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::error::CliError;

/// One part of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// `{{.A.B}}` (an empty path is `.`).
    Field(Vec<String>),
    /// `{{json .A}}`.
    Json(Vec<String>),
}

/// A parsed `--format` template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// `table ...`: a header row and aligned columns.
    pub table: bool,
}

impl Template {
    /// Parses `text` (`table` alone means `default_table`; `json` means `{{json .}}`).
    pub fn parse(text: &str, default_table: &str) -> Result<Template, CliError> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.trim().is_empty() => (true, default_table.to_owned()),
            Some(rest) if rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start().to_owned())
            }
            _ if text.trim() == "json" => (false, "{{json .}}".to_owned()),
            _ => (false, text.clone()),
        };
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| bad(&text, "an action is not closed with }}"))?;
            parts.push(action(after[..end].trim(), &text)?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts, table })
    }

    /// The fields the template names at its top level.
    fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(path) | Part::Json(path) => path.first().map(String::as_str),
            Part::Text(_) => None,
        })
    }

    /// Fails naming the first field `row` does not have.
    pub fn check(&self, row: &Map<String, Value>, kind: &str) -> Result<(), CliError> {
        if let Some(missing) = self.fields().find(|f| !row.contains_key(*f)) {
            let mut known: Vec<&str> = row.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(CliError::Usage(format!(
                "--format: {kind} have no field .{missing} (they have {})",
                known
                    .iter()
                    .map(|k| format!(".{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }

    /// The template applied to one value.
    pub fn render(&self, row: &Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(path) => out.push_str(&go_print(lookup(row, path))),
                Part::Json(path) => out.push_str(&go_json(lookup(row, path))),
            }
        }
        out
    }

    /// The header row of a table: each field's column title.
    pub fn header(&self, titles: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(path) | Part::Json(path) => out.push_str(&titles(&path.join("."))),
            }
        }
        out
    }
}

fn bad(template: &str, reason: &str) -> CliError {
    CliError::Usage(format!("--format {template:?}: {reason}"))
}

fn path_of(text: &str, template: &str) -> Result<Vec<String>, CliError> {
    if text == "." {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('.') else {
        return Err(bad(
            template,
            &format!("{text:?} is not a field (fields start with a dot, as in .Repository)"),
        ));
    };
    let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
    if path
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Err(bad(template, &format!("{text:?} is not a field name")));
    }
    Ok(path)
}

fn action(text: &str, template: &str) -> Result<Part, CliError> {
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        [field] => Ok(Part::Field(path_of(field, template)?)),
        ["json", field] => Ok(Part::Json(path_of(field, template)?)),
        _ => Err(bad(
            template,
            &format!("{{{{{text}}}}}: only {{{{.Field}}}} and {{{{json .Field}}}} actions are understood"),
        )),
    }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> &'a Value {
    path.iter()
        .fold(value, |v, key| v.get(key).unwrap_or(&Value::Null))
}

/// A value as Go's text/template prints it (`[a b]`, `map[k:v]`, `<nil>`).
pub fn go_print(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_print).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// JSON as Go's encoder writes it: `<`, `>` and `&` escaped.
pub fn go_json(value: &Value) -> String {
    escape_html(&serde_json::to_string(value).expect("a JSON value always serializes"))
}

/// JSON indented as Docker's `inspect` prints it (four spaces, Go's escapes).
pub fn go_json_pretty(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("a JSON value always serializes");
    escape_html(&String::from_utf8(out).expect("JSON is UTF-8"))
}

fn escape_html(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Aligns tab-separated cells as Docker's tabwriter does (minimum width 10, padding 3);
/// the last cell of a line is not padded.
pub fn tabulate(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(10);
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// go-units' `HumanSizeWithPrecision`: decimal units, `precision` significant digits.
pub fn human_size(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, precision), UNITS[unit])
}

/// `%.<n>g` without an exponent: `n` significant digits, trailing zeros dropped.
fn significant(value: f64, digits: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// go-units' `HumanDuration`, as `CREATED` shows ages.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = ((d.as_secs_f64() / 3600.0) + 0.5) as u64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// `2 weeks ago`, or `N/A` for an image without a creation time.
pub fn since(time: Option<SystemTime>) -> String {
    match time {
        Some(t) => format!(
            "{} ago",
            human_duration(SystemTime::now().duration_since(t).unwrap_or_default())
        ),
        None => "N/A".into(),
    }
}

/// `2024-09-26 21:31:42 +0000 UTC`, as Go prints a time.
pub fn go_time(time: Option<SystemTime>) -> String {
    match time {
        Some(t) => {
            let text = humantime::format_rfc3339_seconds(t).to_string();
            format!("{} +0000 UTC", text.trim_end_matches('Z').replace('T', " "))
        }
        None => "N/A".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_as_dockers() {
        assert_eq!(human_size(0, 3), "0B");
        assert_eq!(human_size(4_261_000, 3), "4.26MB");
        assert_eq!(human_size(4_261_000, 4), "4.261MB");
        assert_eq!(human_size(1500, 3), "1.5kB");
        assert_eq!(human_size(123_456_789, 3), "123MB");
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(70)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
        assert_eq!(human_duration(Duration::from_secs(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(Duration::from_secs(800 * 86400)), "2 years");
    }

    #[test]
    fn templates_render_fields_json_and_tables() {
        let row = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Digest": "<none>"});
        let t = Template::parse("{{.Repository}}:{{.Tag}}", "").unwrap();
        assert_eq!(t.render(&row), "busybox:latest");
        let t = Template::parse("{{json .}}", "").unwrap();
        assert_eq!(
            t.render(&row),
            r#"{"Digest":"\u003cnone\u003e","Repository":"busybox","Tag":"latest"}"#
        );
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}", "").unwrap();
        assert!(t.table);
        assert_eq!(t.header(&|f| f.to_uppercase()), "REPOSITORY\tTAG");
        assert!(Template::parse("{{.Nope}}", "")
            .unwrap()
            .check(row.as_object().unwrap(), "images")
            .is_err());
        assert!(Template::parse("{{range .}}", "").is_err());
        assert_eq!(
            tabulate(&[
                "REPOSITORY\tTAG\tIMAGE ID".into(),
                "busybox\tlatest\tabc".into()
            ]),
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    abc\n"
        );
    }
}
