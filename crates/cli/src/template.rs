//! The part of Go's text/template that `--format` users type, over JSON values: fields
//! (`.A.B`, `$`, `$x.A`), pipelines (`a | b`), `(sub)` expressions, variables (`$x := …`),
//! `if`/`else if`/`else`/`with`/`range`/`end`, `{{-`/`-}}` trimming, comments, Go's builtins
//! (`and or not eq ne lt le gt ge len index print printf println`) and Docker's
//! (`json lower upper title join split truncate pad`).
//!
//! Written here rather than taken from a crate: gtmpl (the one Go-template crate) works on its
//! own value type and lacks Docker's functions, so each call would convert and extend it anyway.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: executing {0}")]
    Exec(String),
}

type Result<T> = std::result::Result<T, TemplateError>;

fn parse_err<T>(m: impl Into<String>) -> Result<T> {
    Err(TemplateError::Parse(m.into()))
}

fn exec_err<T>(m: impl Into<String>) -> Result<T> {
    Err(TemplateError::Exec(m.into()))
}

/// A parsed template, ready to run against many values (one per table row).
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe {
    /// `$x :=` or `$i, $e :=` (range).
    decl: Vec<String>,
    cmds: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `.A.B` (empty: `.` itself).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone is the root value).
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipe>, Vec<String>),
}

// ---------------------------------------------------------------- lexing

/// Template text split into literal text and the insides of `{{ }}`.
enum Piece {
    Text(String),
    Action(String),
}

fn split_pieces(src: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let inner_start = start + 2;
        let trim_left = rest[inner_start..].starts_with("- ");
        if trim_left {
            text = text.trim_end();
        }
        out.push(Piece::Text(text.to_string()));
        let end = find_close(&rest[inner_start..])
            .ok_or_else(|| TemplateError::Parse("unclosed action (missing \"}}\")".into()))?;
        let mut inner = &rest[inner_start..inner_start + end];
        if trim_left {
            inner = &inner[1..];
        }
        trim_next = inner.ends_with(" -");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            out.push(Piece::Action(inner.to_string()));
        }
        rest = &rest[inner_start + end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    out.push(Piece::Text(text.to_string()));
    Ok(out)
}

/// Offset of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None if b[i] == b'"' || b[i] == b'`' => quote = Some(b[i]),
            None if b[i..].starts_with(b"}}") => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Lit(Value),
    LParen,
    RParen,
    Bar,
    Declare,
    Comma,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let take_while = |i: &mut usize, f: &dyn Fn(char) -> bool| {
        let s = *i;
        while *i < chars.len() && f(chars[*i]) {
            *i += 1;
        }
        chars[s..*i].iter().collect::<String>()
    };
    let fields = |s: &str| -> Vec<String> {
        s.split('.')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                out.push(Tok::Bar);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                // Go's assignment to an existing variable: the same as a declaration here.
                out.push(Tok::Declare);
                i += 1;
            }
            '.' => {
                let s = take_while(&mut i, &|c| is_ident(c) || c == '.');
                out.push(Tok::Field(fields(&s)));
            }
            '$' => {
                i += 1;
                let name = take_while(&mut i, &is_ident);
                let path = take_while(&mut i, &|c| is_ident(c) || c == '.');
                out.push(Tok::Var(name, fields(&path)));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return parse_err("unterminated quoted string"),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&c) => s.push(c),
                                None => return parse_err("unterminated quoted string"),
                            }
                        }
                        Some(&c) => s.push(c),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Lit(Value::String(s)));
            }
            '`' => {
                i += 1;
                let s = take_while(&mut i, &|c| c != '`');
                if i >= chars.len() {
                    return parse_err("unterminated raw quoted string");
                }
                i += 1;
                out.push(Tok::Lit(Value::String(s)));
            }
            _ if c.is_ascii_digit() || c == '-' => {
                let s = take_while(&mut i, &|c| {
                    c.is_ascii_alphanumeric() || c == '.' || c == '-'
                });
                let v: Value = serde_json::from_str(&s)
                    .map_err(|_| TemplateError::Parse(format!("bad number syntax: {s:?}")))?;
                out.push(Tok::Lit(v));
            }
            _ if is_ident(c) => {
                let w = take_while(&mut i, &is_ident);
                out.push(match w.as_str() {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Null),
                    _ => Tok::Word(w),
                });
            }
            _ => return parse_err(format!("unexpected {c:?} in command")),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- parsing

fn parse_pipe(toks: &[Tok]) -> Result<Pipe> {
    let mut pos = 0;
    let mut decl = Vec::new();
    // `$x :=` or `$i, $e :=`
    let mut j = 0;
    let mut names = Vec::new();
    while let Some(Tok::Var(n, path)) = toks.get(j) {
        if !path.is_empty() {
            break;
        }
        names.push(n.clone());
        j += 1;
        match toks.get(j) {
            Some(Tok::Comma) => j += 1,
            Some(Tok::Declare) => {
                decl = names.clone();
                pos = j + 1;
                break;
            }
            _ => break,
        }
    }
    let (pipe, used) = parse_cmds(&toks[pos..])?;
    if pos + used != toks.len() {
        return parse_err("unexpected \")\" in command");
    }
    Ok(Pipe { decl, cmds: pipe })
}

/// Commands separated by `|`, up to an unmatched `)` or the end; returns how many tokens it used.
fn parse_cmds(toks: &[Tok]) -> Result<(Vec<Vec<Operand>>, usize)> {
    let mut cmds = vec![Vec::new()];
    let mut i = 0;
    while i < toks.len() {
        let op = match &toks[i] {
            Tok::RParen => break,
            Tok::Bar => {
                if cmds.last().is_some_and(Vec::is_empty) {
                    return parse_err("missing command before \"|\"");
                }
                cmds.push(Vec::new());
                i += 1;
                continue;
            }
            Tok::Word(w) => Operand::Func(w.clone()),
            Tok::Field(p) => Operand::Field(p.clone()),
            Tok::Var(n, p) => Operand::Var(n.clone(), p.clone()),
            Tok::Lit(v) => Operand::Lit(v.clone()),
            Tok::LParen => {
                let (inner, used) = parse_cmds(&toks[i + 1..])?;
                i += 1 + used;
                if toks.get(i) != Some(&Tok::RParen) {
                    return parse_err("unclosed left paren");
                }
                let mut path = Vec::new();
                if let Some(Tok::Field(p)) = toks.get(i + 1) {
                    if !p.is_empty() {
                        path = p.clone();
                        i += 1;
                    }
                }
                Operand::Sub(
                    Box::new(Pipe {
                        decl: Vec::new(),
                        cmds: inner,
                    }),
                    path,
                )
            }
            Tok::Declare | Tok::Comma => return parse_err("unexpected declaration in command"),
        };
        if let Some(last) = cmds.last_mut() {
            last.push(op);
        }
        i += 1;
    }
    if cmds.iter().any(Vec::is_empty) {
        return parse_err("missing value for command");
    }
    Ok((cmds, i))
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else(Option<String>),
}

fn parse_list(pieces: &[Piece], i: &mut usize) -> Result<(Vec<Node>, Stop)> {
    let mut nodes = Vec::new();
    while *i < pieces.len() {
        let p = &pieces[*i];
        *i += 1;
        let a = match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t.clone()));
                }
                continue;
            }
            Piece::Action(a) => a.as_str(),
        };
        let (word, rest) = match a.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (a, ""),
        };
        match word {
            "end" => return Ok((nodes, Stop::End)),
            "else" if rest.is_empty() => return Ok((nodes, Stop::Else(None))),
            "else" => return Ok((nodes, Stop::Else(Some(rest.to_string())))),
            "if" | "with" | "range" => nodes.push(parse_block(word, rest, pieces, i)?),
            "define" | "template" | "block" | "break" | "continue" => {
                return parse_err(format!("{{{{{word}}}}} is not supported"))
            }
            _ => nodes.push(Node::Action(parse_pipe(&lex(a)?)?)),
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_block(word: &str, head: &str, pieces: &[Piece], i: &mut usize) -> Result<Node> {
    if head.is_empty() {
        return parse_err(format!("missing value for {word}"));
    }
    let pipe = parse_pipe(&lex(head)?)?;
    let (body, stop) = parse_list(pieces, i)?;
    let els = match stop {
        Stop::Eof => {
            return parse_err(format!(
                "unexpected EOF: {{{{{word}}}}} without {{{{end}}}}"
            ))
        }
        Stop::End => Vec::new(),
        Stop::Else(None) => match parse_list(pieces, i)? {
            (e, Stop::End) => e,
            _ => {
                return parse_err(format!(
                    "{{{{{word}}}}}: expected {{{{end}}}} after {{{{else}}}}"
                ))
            }
        },
        // `else if X` / `else with X` chain: the rest is a nested block sharing our `end`.
        Stop::Else(Some(chain)) => {
            let (w, r) = chain
                .split_once(char::is_whitespace)
                .unwrap_or((&chain, ""));
            if w != "if" && w != "with" {
                return parse_err(format!("unexpected {{{{else {chain}}}}}"));
            }
            vec![parse_block(w, r.trim(), pieces, i)?]
        }
    };
    Ok(match word {
        "if" => Node::If(pipe, body, els),
        "with" => Node::With(pipe, body, els),
        _ => Node::Range(pipe, body, els),
    })
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let pieces = split_pieces(src)?;
        let mut i = 0;
        match parse_list(&pieces, &mut i)? {
            (nodes, Stop::Eof) => Ok(Template { nodes }),
            (_, Stop::End) => parse_err("unexpected {{end}}"),
            (_, Stop::Else(_)) => parse_err("unexpected {{else}}"),
        }
    }

    pub fn execute(&self, root: &Value) -> Result<String> {
        let mut ex = Exec {
            vars: vec![(String::new(), root.clone())],
            out: String::new(),
        };
        ex.nodes(&self.nodes, root)?;
        Ok(ex.out)
    }
}

// ---------------------------------------------------------------- execution

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
}

/// Go's truth: false, 0, nil and empty strings, lists and maps are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How Go prints a value with `{{.}}`.
pub fn plain(v: &Value) -> String {
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

fn walk(v: &Value, path: &[String]) -> Value {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return Value::Null,
        }
    }
    cur.clone()
}

impl Exec {
    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&plain(&v));
                    }
                }
                Node::If(p, then, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = self.nodes(if truthy(&v) { then } else { els }, dot);
                    self.vars.truncate(mark);
                    r?;
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if truthy(&v) {
                        self.nodes(body, &v)
                    } else {
                        self.nodes(els, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(p, body, els) => self.range(p, body, els, dot)?,
            }
        }
        Ok(())
    }

    fn range(&mut self, p: &Pipe, body: &[Node], els: &[Node], dot: &Value) -> Result<()> {
        let bare = Pipe {
            decl: Vec::new(),
            cmds: p.cmds.clone(),
        };
        let v = self.pipe(&bare, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::from(i), x.clone()))
                .collect(),
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                .collect(),
            Value::Null => Vec::new(),
            Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
                .map(|i| (Value::from(i), Value::from(i)))
                .collect(),
            other => return exec_err(format!("range can't iterate over {}", plain(other))),
        };
        if items.is_empty() {
            return self.nodes(els, dot);
        }
        for (k, x) in items {
            let mark = self.vars.len();
            match p.decl.as_slice() {
                [] => {}
                [e] => self.vars.push((e.clone(), x.clone())),
                [i, e, ..] => {
                    self.vars.push((i.clone(), k));
                    self.vars.push((e.clone(), x.clone()));
                }
            }
            let r = self.nodes(body, &x);
            self.vars.truncate(mark);
            r?;
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<&Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v),
            None => parse_err(format!("undefined variable \"${name}\"")),
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev)?);
        }
        let v = prev.unwrap_or(Value::Null);
        if let Some(name) = p.decl.first() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> Result<Value> {
        Ok(match op {
            Operand::Field(path) => walk(dot, path),
            Operand::Var(name, path) => walk(self.var(name)?, path),
            Operand::Lit(v) => v.clone(),
            Operand::Sub(p, path) => walk(&self.pipe(p, dot)?, path),
            Operand::Func(f) => call(f, Vec::new())?,
        })
    }

    fn command(&mut self, cmd: &[Operand], dot: &Value, prev: Option<Value>) -> Result<Value> {
        match cmd {
            [Operand::Func(f), rest @ ..] => {
                let mut args = Vec::with_capacity(rest.len() + 1);
                for a in rest {
                    args.push(self.operand(a, dot)?);
                }
                args.extend(prev);
                call(f, args)
            }
            [single] if prev.is_none() => self.operand(single, dot),
            _ => exec_err("can't give argument to non-function"),
        }
    }
}

// ---------------------------------------------------------------- functions

fn as_str(v: &Value) -> String {
    plain(v)
}

fn as_i64(f: &str, v: &Value) -> Result<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|x| x as i64))
            .ok_or_else(|| TemplateError::Exec(format!("{f}: bad number {n}"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| TemplateError::Exec(format!("{f}: {s:?} is not a number"))),
        other => exec_err(format!("{f}: {} is not a number", plain(other))),
    }
}

fn compare(f: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y)
                .ok_or_else(|| TemplateError::Exec(format!("{f}: incomparable numbers")))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if f == "eq" || f == "ne" => Ok(x.cmp(y)),
        (Value::Null, Value::Null) if f == "eq" || f == "ne" => Ok(std::cmp::Ordering::Equal),
        _ if f == "eq" || f == "ne" => Ok(if a == b {
            std::cmp::Ordering::Equal
        } else {
            std::cmp::Ordering::Less
        }),
        _ => exec_err(format!("{f}: incompatible types for comparison")),
    }
}

fn want(f: &str, args: &[Value], n: usize) -> Result<()> {
    if args.len() != n {
        return exec_err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Go's fmt verbs that matter here: %s %v %d %q %f (with precision) %%.
fn printf(args: &[Value]) -> Result<String> {
    let Some((fmt, rest)) = args.split_first() else {
        return exec_err("wrong number of args for printf: want at least 1 got 0");
    };
    let fmt = as_str(fmt);
    let mut out = String::new();
    let mut it = rest.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '.' || d == '-' {
                prec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars.next().unwrap_or('%');
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = it.next().cloned().unwrap_or(Value::Null);
        let s = match verb {
            'q' => serde_json::to_string(&as_str(&arg)).unwrap_or_default(),
            'f' => {
                let p = prec
                    .split('.')
                    .nth(1)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(6);
                format!("{:.p$}", arg.as_f64().unwrap_or(0.0))
            }
            'd' => as_i64("printf", &arg)?.to_string(),
            _ => as_str(&arg),
        };
        let width: usize = prec
            .split('.')
            .next()
            .and_then(|w| w.trim_start_matches('-').parse().ok())
            .unwrap_or(0);
        if prec.starts_with('-') {
            out.push_str(&format!("{s:<width$}"));
        } else {
            out.push_str(&format!("{s:>width$}"));
        }
    }
    Ok(out)
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn index(mut v: Value, keys: &[Value]) -> Result<Value> {
    for k in keys {
        v = match (&v, k) {
            (Value::Object(m), key) => m.get(&as_str(key)).cloned().unwrap_or(Value::Null),
            (Value::Array(a), Value::Number(n)) => {
                let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                match a.get(i) {
                    Some(x) => x.clone(),
                    None => return exec_err(format!("index out of range: {n}")),
                }
            }
            (Value::Null, _) => Value::Null,
            (other, _) => return exec_err(format!("can't index item of type {}", plain(other))),
        };
    }
    Ok(v)
}

fn call(f: &str, args: Vec<Value>) -> Result<Value> {
    use std::cmp::Ordering::*;
    let s = |v: String| Ok(Value::String(v));
    match f {
        "json" => {
            want(f, &args, 1)?;
            s(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        "lower" => {
            want(f, &args, 1)?;
            s(as_str(&args[0]).to_lowercase())
        }
        "upper" => {
            want(f, &args, 1)?;
            s(as_str(&args[0]).to_uppercase())
        }
        "title" => {
            want(f, &args, 1)?;
            s(title(&as_str(&args[0])))
        }
        "join" => {
            want(f, &args, 2)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect(),
                Value::Null => Vec::new(),
                other => vec![as_str(other)],
            };
            s(items.join(&as_str(&args[1])))
        }
        "split" => {
            want(f, &args, 2)?;
            let (text, sep) = (as_str(&args[0]), as_str(&args[1]));
            Ok(Value::Array(
                text.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            ))
        }
        "truncate" => {
            want(f, &args, 2)?;
            let n = as_i64(f, &args[1])?.max(0) as usize;
            s(as_str(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            want(f, &args, 3)?;
            let (l, r) = (as_i64(f, &args[1])?.max(0), as_i64(f, &args[2])?.max(0));
            s(format!(
                "{}{}{}",
                " ".repeat(l as usize),
                as_str(&args[0]),
                " ".repeat(r as usize)
            ))
        }
        "len" => {
            want(f, &args, 1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(t) => t.len(),
                Value::Null => 0,
                other => return exec_err(format!("len of {}", plain(other))),
            };
            Ok(Value::from(n))
        }
        "index" => match args.split_first() {
            Some((v, keys)) => index(v.clone(), keys),
            None => exec_err("wrong number of args for index: want at least 1 got 0"),
        },
        "not" => {
            want(f, &args, 1)?;
            Ok(Value::Bool(!truthy(&args[0])))
        }
        "and" => Ok(args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null)),
        "or" => Ok(args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null)),
        "eq" => match args.split_first() {
            Some((a, rest)) if !rest.is_empty() => {
                let mut any = false;
                for b in rest {
                    any |= compare(f, a, b)? == Equal;
                }
                Ok(Value::Bool(any))
            }
            _ => exec_err("wrong number of args for eq: want at least 2"),
        },
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(f, &args, 2)?;
            let o = compare(f, &args[0], &args[1])?;
            Ok(Value::Bool(match f {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "print" | "println" => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                // Go: a space between operands when neither is a string (println: always).
                let both_nonstring = i > 0 && !args[i - 1].is_string() && !a.is_string();
                if i > 0 && (f == "println" || both_nonstring) {
                    out.push(' ');
                }
                out.push_str(&as_str(a));
            }
            if f == "println" {
                out.push('\n');
            }
            s(out)
        }
        "printf" => s(printf(&args)?),
        _ => parse_err(format!("function {f:?} not defined")),
    }
}

/// The keys of a JSON object, for `table` headers when a template names none.
pub fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m: &Map<String, Value>| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        Template::parse(t)
            .and_then(|t| t.execute(v))
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    fn sample() -> Value {
        json!({
            "Names": "web",
            "State": {"Status": "running", "Running": true, "ExitCode": 0, "Health": null},
            "Config": {"Labels": {"k": "v", "a.b": "c"}, "Env": ["A=1", "B=2"], "Image": "busybox"},
            "Args": ["-c", "echo hi"],
            "Mounts": [{"Source": "/a", "Destination": "/x"}, {"Source": "/b", "Destination": "/y"}],
            "Size": 1234
        })
    }

    #[test]
    fn fields_and_json() {
        let v = sample();
        assert_eq!(run("{{.Names}}", &v), "web");
        assert_eq!(run("{{.State.Status}}", &v), "running");
        assert_eq!(run("{{ .State.ExitCode }}", &v), "0");
        assert_eq!(run("{{.Missing}}", &v), "<no value>");
        assert_eq!(run("{{json .Config.Labels}}", &v), r#"{"a.b":"c","k":"v"}"#);
        assert_eq!(run("{{.Config | json}}", &v), run("{{json .Config}}", &v));
        assert_eq!(run("{{$.Names}}", &v), "web");
    }

    #[test]
    fn functions_like_docker() {
        let v = sample();
        assert_eq!(run(r#"{{index .Config.Labels "k"}}"#, &v), "v");
        assert_eq!(run(r#"{{index .Config.Labels "a.b"}}"#, &v), "c");
        assert_eq!(run("{{index .Args 1}}", &v), "echo hi");
        assert_eq!(run("{{upper .Names}} {{lower \"AbC\"}}", &v), "WEB abc");
        assert_eq!(run("{{.Names | upper}}", &v), "WEB");
        assert_eq!(run(r#"{{join .Args ","}}"#, &v), "-c,echo hi");
        assert_eq!(run(r#"{{split "a:b" ":"}}"#, &v), "[a b]");
        assert_eq!(run("{{len .Mounts}}", &v), "2");
        assert_eq!(run("{{title \"hello world\"}}", &v), "Hello World");
        assert_eq!(run("{{truncate .Names 2}}", &v), "we");
        assert_eq!(
            run(r#"{{printf "%s=%d %-4s|" .Names .Size "x"}}"#, &v),
            "web=1234 x   |"
        );
        assert_eq!(run("{{println .Names}}", &v), "web\n");
        assert_eq!(run("{{(index .Mounts 1).Source}}", &v), "/b");
    }

    #[test]
    fn control_flow() {
        let v = sample();
        assert_eq!(run("{{range .Mounts}}{{.Source}} {{end}}", &v), "/a /b ");
        assert_eq!(
            run(
                "{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}",
                &v
            ),
            "0=/x;1=/y;"
        );
        assert_eq!(
            run(
                "{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}} {{end}}",
                &v
            ),
            "a.b:c k:v "
        );
        assert_eq!(run("{{range .Nope}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}", &v), "up");
        assert_eq!(
            run(
                "{{if eq .State.Status \"exited\"}}E{{else if .State.Running}}R{{else}}?{{end}}",
                &v
            ),
            "R"
        );
        assert_eq!(
            run("{{if not .State.Health}}no health{{end}}", &v),
            "no health"
        );
        assert_eq!(run("{{with .Config}}{{.Image}}{{end}}", &v), "busybox");
        assert_eq!(
            run("{{if and .Names (gt .Size 1000)}}big{{end}}", &v),
            "big"
        );
        assert_eq!(run("{{$n := .Names}}{{$n}}!", &v), "web!");
        assert_eq!(run("a {{- /* note */ -}} b", &v), "ab");
        assert_eq!(run("x  {{- .Names -}}  y", &v), "xweby");
    }

    #[test]
    fn errors_are_clear() {
        let v = sample();
        assert!(run("{{.Names", &v).contains("unclosed action"));
        assert!(run("{{if .Names}}x", &v).contains("without {{end}}"));
        assert!(run("{{end}}", &v).contains("unexpected {{end}}"));
        assert!(run("{{nosuch .Names}}", &v).contains("function \"nosuch\" not defined"));
        assert!(run("{{range .Names}}{{end}}", &v).contains("can't iterate"));
        assert!(run("{{index .Args 9}}", &v).contains("out of range"));
    }
}
