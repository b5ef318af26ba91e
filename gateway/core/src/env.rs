//! `${VAR}` interpolation of string values in pipeline files.
//!
//! Interpolation happens while a string value is deserialised, after YAML
//! parsing, so a secret can never inject YAML structure and every error keeps
//! the exact location of the value it came from.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer};

/// A string value in which `${VAR}` and `${VAR:-default}` are replaced by the
/// environment; `$$` stands for a literal `$`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct EnvString(pub String);

impl EnvString {
    /// The interpolated value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EnvString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        interpolate(&raw, lookup)
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

thread_local! {
    static OVERRIDES: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `vars` taking precedence over the process environment for
/// interpolation on this thread (the process environment is never modified).
pub fn with_vars<R>(vars: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let saved = OVERRIDES.with(|o| {
        let mut o = o.borrow_mut();
        let saved = o.clone();
        o.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        saved
    });
    let r = f();
    OVERRIDES.with(|o| *o.borrow_mut() = saved);
    r
}

fn lookup(name: &str) -> Option<String> {
    OVERRIDES
        .with(|o| {
            o.borrow()
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .or_else(|| std::env::var(name).ok())
}

/// Replaces `${VAR}` / `${VAR:-default}` using `lookup`; `$$` is a literal `$`.
pub fn interpolate(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{raw}`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name `{name}`"));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "PASS").then(|| "s3cr3t: {x}".to_owned())
    }

    #[test]
    fn replaces_variables_and_keeps_yaml_special_characters_verbatim() {
        assert_eq!(interpolate("p=${PASS}!", env).unwrap(), "p=s3cr3t: {x}!");
    }

    #[test]
    fn uses_default_when_variable_is_unset() {
        assert_eq!(
            interpolate("${HOST:-127.0.0.1}:1883", env).unwrap(),
            "127.0.0.1:1883"
        );
    }

    #[test]
    fn reports_unset_variable_by_name() {
        let e = interpolate("${NOPE}", env).unwrap_err();
        assert!(e.contains("`NOPE` is not set"), "{e}");
    }

    #[test]
    fn overrides_take_precedence_on_this_thread_only() {
        let v = with_vars(&[("SLUICE_TEST_HOST", "10.0.0.9")], || {
            lookup("SLUICE_TEST_HOST")
        });
        assert_eq!(v.as_deref(), Some("10.0.0.9"));
        assert_eq!(lookup("SLUICE_TEST_HOST"), None);
    }

    #[test]
    fn double_dollar_is_literal() {
        assert_eq!(interpolate("a$$b $5", env).unwrap(), "a$b $5");
    }
}
