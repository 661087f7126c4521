//! Image configs for images made from containers (`commit`) and root filesystems (`import`):
//! the request's config overrides and Docker's `changes` (a few Dockerfile instructions).

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::Config;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Docker's `Cmd`/`Entrypoint`: a string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StrOrList {
    One(String),
    Many(Vec<String>),
}

impl StrOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StrOrList::One(s) => vec![s],
            StrOrList::Many(v) => v,
        }
    }
}

/// The JSON body of `POST /commit`: a container config whose set fields replace the
/// container's. Fields Docker's body carries but an image config has no place for are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigOverrides {
    pub cmd: Option<StrOrList>,
    pub entrypoint: Option<StrOrList>,
    pub env: Option<Vec<String>>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub stop_signal: Option<String>,
}

impl ConfigOverrides {
    pub fn apply(self, c: &mut Config) {
        if let Some(v) = self.cmd {
            c.set_cmd(Some(v.into_vec()));
        }
        if let Some(v) = self.entrypoint {
            c.set_entrypoint(Some(v.into_vec()));
        }
        if let Some(env) = self.env {
            let merged = merge_env(c.env().as_deref().unwrap_or(&[]), &env);
            c.set_env(Some(merged));
        }
        if let Some(p) = self.exposed_ports {
            add_all(c, Field::Ports, p.into_keys().collect());
        }
        if let Some(l) = self.labels {
            let labels = c.labels_mut().get_or_insert_with(HashMap::new);
            labels.extend(l);
        }
        if let Some(u) = self.user {
            c.set_user(Some(u));
        }
        if let Some(w) = self.working_dir {
            c.set_working_dir(Some(w));
        }
        if let Some(v) = self.volumes {
            add_all(c, Field::Volumes, v.into_keys().collect());
        }
        if let Some(s) = self.stop_signal {
            c.set_stop_signal(Some(s));
        }
    }
}

/// `over` replaces variables of the same name in `base`; new ones are appended.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |kv: &str| kv.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = base.to_vec();
    for kv in over {
        match out.iter_mut().find(|e| key(e) == key(kv)) {
            Some(e) => *e = kv.clone(),
            None => out.push(kv.clone()),
        }
    }
    out
}

enum Field {
    Ports,
    Volumes,
}

fn add_all(c: &mut Config, field: Field, items: Vec<String>) {
    let mut cur = match field {
        Field::Ports => c.exposed_ports().clone(),
        Field::Volumes => c.volumes().clone(),
    }
    .unwrap_or_default();
    for i in items {
        if !cur.contains(&i) {
            cur.push(i);
        }
    }
    cur.sort();
    match field {
        Field::Ports => c.set_exposed_ports(Some(cur)),
        Field::Volumes => c.set_volumes(Some(cur)),
    };
}

/// Apply Docker's `changes` ("CMD [\"sh\"]", "ENV A=1", …) in order. An instruction an image
/// config cannot hold is a 400 naming it.
pub fn apply_changes(c: &mut Config, changes: &[String]) -> Result<()> {
    for line in changes {
        apply_change(c, line.trim())
            .map_err(|why| Error::InvalidParameter(format!("changes: {line:?}: {why}")))?;
    }
    Ok(())
}

fn apply_change(c: &mut Config, line: &str) -> std::result::Result<(), String> {
    if line.is_empty() {
        return Ok(());
    }
    let (instr, rest) = line
        .split_once(char::is_whitespace)
        .map(|(a, b)| (a, b.trim()))
        .unwrap_or((line, ""));
    let instr = instr.to_ascii_uppercase();
    let need_arg = || {
        if rest.is_empty() {
            Err(format!("{instr} requires at least one argument"))
        } else {
            Ok(())
        }
    };
    match instr.as_str() {
        "CMD" => {
            need_arg()?;
            c.set_cmd(Some(command_form(rest)));
        }
        "ENTRYPOINT" => {
            need_arg()?;
            c.set_entrypoint(Some(command_form(rest)));
        }
        "ENV" => {
            need_arg()?;
            let pairs = key_values(rest, "ENV")?;
            let kv: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            let merged = merge_env(c.env().as_deref().unwrap_or(&[]), &kv);
            c.set_env(Some(merged));
        }
        "LABEL" => {
            need_arg()?;
            let pairs = key_values(rest, "LABEL")?;
            c.labels_mut().get_or_insert_with(HashMap::new).extend(pairs);
        }
        "EXPOSE" => {
            need_arg()?;
            let mut ports = Vec::new();
            for p in rest.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let ok_num = num.parse::<u16>().is_ok()
                    || num
                        .split_once('-')
                        .is_some_and(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok());
                if !ok_num || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(format!("invalid port {p:?}"));
                }
                ports.push(format!("{num}/{proto}"));
            }
            add_all(c, Field::Ports, ports);
        }
        "VOLUME" => {
            need_arg()?;
            let vols = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest).map_err(|e| format!("bad JSON: {e}"))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            add_all(c, Field::Volumes, vols);
        }
        "USER" => {
            need_arg()?;
            c.set_user(Some(rest.to_string()));
        }
        "WORKDIR" => {
            need_arg()?;
            c.set_working_dir(Some(rest.to_string()));
        }
        "STOPSIGNAL" => {
            need_arg()?;
            c.set_stop_signal(Some(rest.to_string()));
        }
        // Docker accepts ONBUILD here; triggers mean nothing without a builder, so it is a no-op.
        "ONBUILD" => {}
        other => return Err(format!("{other} is not a valid change instruction (allowed: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)")),
    }
    Ok(())
}

/// `["a","b"]` (exec form) or anything else (shell form: `/bin/sh -c "…"`).
fn command_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
}

/// `K=V K2="v 2"` or the legacy `K some value`.
fn key_values(rest: &str, what: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    let first = words
        .first()
        .ok_or_else(|| format!("{what} needs a name"))?;
    if !first.contains('=') {
        // Legacy form: the first word names, the rest is the value.
        let value = rest[first.len()..].trim().to_string();
        return Ok(vec![(first.clone(), value)]);
    }
    let mut out = Vec::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("{what} {w:?} must be NAME=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{what} {w:?} has an empty name"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Whitespace-separated words; double or single quotes group and are removed, `\` escapes.
fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_changes_apply_like_docker() {
        let mut c = Config::default();
        c.set_env(Some(vec!["PATH=/bin".into(), "A=0".into()]));
        apply_changes(
            &mut c,
            &[
                "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]".into(),
                "ENTRYPOINT /bin/echo x".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C three words".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL k=v".into(),
                "USER nobody".into(),
                "WORKDIR /tmp".into(),
                "VOLUME [\"/data\"]".into(),
                "STOPSIGNAL SIGINT".into(),
                "ONBUILD RUN true".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd().as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint().as_deref().unwrap(),
            ["/bin/sh", "-c", "/bin/echo x"]
        );
        assert_eq!(
            c.env().as_deref().unwrap(),
            ["PATH=/bin", "A=1", "B=two words", "C=three words"]
        );
        assert_eq!(c.exposed_ports().as_deref().unwrap(), ["53/udp", "80/tcp"]);
        assert_eq!(c.labels().as_ref().unwrap()["k"], "v");
        assert_eq!(c.user().as_deref(), Some("nobody"));
        assert_eq!(c.working_dir().as_deref(), Some("/tmp"));
        assert_eq!(c.volumes().as_deref().unwrap(), ["/data"]);
        assert_eq!(c.stop_signal().as_deref(), Some("SIGINT"));
    }

    #[test]
    fn bad_changes_name_the_instruction() {
        let mut c = Config::default();
        for (bad, why) in [
            ("FROM busybox", "FROM is not a valid change"),
            ("EXPOSE http", "invalid port"),
            ("CMD", "requires at least one argument"),
            ("ENV A=\"x", "unterminated quote"),
        ] {
            let e = apply_changes(&mut c, &[bad.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains("changes") && e.contains(why), "{bad}: {e}");
        }
    }
}
