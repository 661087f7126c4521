//! Output: docker-like tables and Go-template basics (`{{.Field}}`, `{{.A.B}}`, `{{json .}}`,
//! `{{json .Field}}`, the `table` prefix).

use serde_json::Value;

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Render `tpl` against `v`.
pub fn render(tpl: &str, v: &Value) -> String {
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = rest[start + 2..start + end].trim();
        rest = &rest[start + end + 2..];
        if let Some(arg) = expr.strip_prefix("json ") {
            let arg = arg.trim();
            let target = if arg == "." { Some(v) } else { lookup(v, arg) };
            out.push_str(
                &target
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "null".into()),
            );
        } else if let Some(path) = expr.strip_prefix('.') {
            out.push_str(
                &lookup(v, path)
                    .map(plain)
                    .unwrap_or_else(|| "<no value>".into()),
            );
        } else {
            out.push_str(&format!("{{{{{expr}}}}}"));
        }
    }
    out.push_str(rest);
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

/// Rows through a template; a `table ` prefix prints a header of the field names.
pub fn templated(tpl: &str, rows: &[Value]) {
    let (tpl, header) = match tpl.strip_prefix("table ") {
        Some(t) => (t, true),
        None => (tpl, false),
    };
    if header {
        let h = tpl
            .split("{{")
            .skip(1)
            .filter_map(|p| p.split("}}").next())
            .map(|e| e.trim().trim_start_matches('.').to_uppercase())
            .collect::<Vec<_>>()
            .join("\t");
        println!("{h}");
    }
    for r in rows {
        println!("{}", render(tpl, r));
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
        assert_eq!(
            render("{{.ID}} {{.State.Status}} {{.N}}", &v),
            "abc running 3"
        );
        assert_eq!(render("{{json .State}}", &v), r#"{"Status":"running"}"#);
        assert_eq!(render("{{.Missing}}", &v), "<no value>");
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_060_000), "1.06MB");
    }
}
