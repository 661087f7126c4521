//! Output: docker-like tables and `--format` Go templates (crate::template), with Docker's
//! `table` prefix (a header row, columns aligned like its tabwriter).

use berth_api::client::ClientError;
use serde_json::Value;

use crate::template::Template;

/// Docker's `\t`/`\n` escapes, which shells pass through literally.
fn unescape(tpl: &str) -> String {
    tpl.replace("\\t", "\t").replace("\\n", "\n")
}

/// Parse once, run per value (`exec`): events and other streams.
pub fn parse(tpl: &str) -> Result<Template, ClientError> {
    Template::parse(&unescape(tpl)).map_err(|e| ClientError::Protocol(e.to_string()))
}

pub fn exec(t: &Template, v: &Value) -> Result<String, ClientError> {
    t.execute(v)
        .map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Render `tpl` against `v` (`inspect -f`, one object).
pub fn render(tpl: &str, v: &Value) -> Result<String, ClientError> {
    exec(&parse(tpl)?, v)
}

/// "CreatedAt" → "CREATED AT": Docker's header words for fields it names no other way.
fn header_of(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if i > 0 && c.is_uppercase() && (chars[i - 1].is_lowercase() || next_lower) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// The first component of each `.Field` inside `{{ }}` (for headers of empty tables).
fn named_fields(tpl: &str) -> Vec<String> {
    let mut out = Vec::new();
    for action in tpl.split("{{").skip(1).filter_map(|p| p.split("}}").next()) {
        let chars: Vec<char> = action.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let starts = *c == '.' && (i == 0 || !chars[i - 1].is_alphanumeric());
            if starts {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                if !name.is_empty() && !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// Rows through a template; a `table ` prefix adds a header row (each field's header from
/// `headers`, else its name in capitals) and aligns tab-separated columns.
pub fn templated_with(
    tpl: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
) -> Result<(), ClientError> {
    let (body, table) = match tpl.trim_start().strip_prefix("table") {
        Some(t) => (t.trim_start(), true),
        None => (tpl, false),
    };
    let t = parse(body)?;
    let mut lines = Vec::new();
    if table {
        // Docker renders the header by running the template over the header names.
        let mut h = serde_json::Map::new();
        for k in rows.first().map(crate::template::keys).unwrap_or_default() {
            h.insert(k.clone(), Value::String(header_of(&k)));
        }
        for (k, name) in headers {
            h.insert(k.to_string(), Value::String(name.to_string()));
        }
        // With no rows yet, the fields the template names still get their headers.
        for f in named_fields(body) {
            h.entry(f.clone())
                .or_insert_with(|| Value::String(header_of(&f)));
        }
        lines.push(exec(&t, &Value::Object(h))?);
    }
    for r in rows {
        lines.push(exec(&t, r)?);
    }
    if table {
        print!("{}", tabwrite(&lines));
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}

/// Align tab-separated cells like Go's tabwriter (min width 10, padding 3), as Docker does.
pub fn tabwrite(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| l.split('\t').collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &split {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for cells in split {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                line.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Print rows as a table with a header (docker spaces columns by three).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

pub fn human_size(bytes: i64) -> String {
    // Docker: decimal units, three significant digits.
    let mut v = bytes as f64;
    let mut unit = 0;
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

/// Binary units like docker stats' memory column ("627KiB / 23.54GiB").
pub fn human_binary(bytes: i64) -> String {
    let mut v = bytes as f64;
    let mut unit = 0;
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{}", UNITS[unit])
}

/// "5 seconds ago", like docker's CREATED column.
pub fn ago(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(unix);
    let s = (now - unix).max(0);
    let d = match s {
        0 => return "Less than a second ago".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 14 * 86400 => format!("{} days", s / 86400),
        _ if s < 90 * 86400 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 730 * 86400 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    };
    format!("{d} ago")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_like_go() {
        let v = json!({"ID": "abc", "State": {"Status": "running"}, "N": 3});
        let r = |t: &str| render(t, &v).unwrap_or_else(|e| e.to_string());
        assert_eq!(r("{{.ID}} {{.State.Status}} {{.N}}"), "abc running 3");
        assert_eq!(r("{{json .State}}"), r#"{"Status":"running"}"#);
        assert_eq!(r("{{.Missing}}"), "<no value>");
        assert_eq!(r("{{.ID}}\\t{{.N}}"), "abc\t3");
        assert!(r("{{.ID").contains("template parsing error"));
    }

    #[test]
    fn headers_and_columns_like_docker() {
        assert_eq!(header_of("CreatedAt"), "CREATED AT");
        assert_eq!(header_of("ID"), "ID");
        assert_eq!(header_of("RunningFor"), "RUNNING FOR");
        assert_eq!(
            named_fields("{{.ID}}\t{{upper .State.Status}} {{$x.Y}}"),
            ["ID", "State"]
        );
        let lines = vec![
            "CONTAINER ID\tIMAGE".to_string(),
            "abc\tbusybox".to_string(),
        ];
        assert_eq!(
            tabwrite(&lines),
            "CONTAINER ID   IMAGE\nabc            busybox\n"
        );
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_060_000), "1.06MB");
    }
}
