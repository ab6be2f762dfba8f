//! Pyroscope's application name with labels: `my.app.cpu{env=prod,region=eu}`.
//!
//! The name runs up to `{`; the labels are `key=value` pairs separated by
//! `,` up to a final `}`. Keys are `[A-Za-z_][A-Za-z0-9_.]*`; values are
//! any text without `,`, `{`, `}` or `=`. Spaces around names, keys and
//! values are dropped. `service_name` and keys starting with `__` are set
//! by the server and cannot be given. Errors say where in the string the
//! problem is (a 1-based character position).

use std::collections::BTreeMap;

/// A parsed `name` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName {
    /// The application name, before `{`.
    pub app: String,
    /// The labels inside `{…}`.
    pub labels: BTreeMap<String, String>,
}

/// Parses `text`; the error says what is wrong and where.
pub fn parse(text: &str) -> Result<AppName, String> {
    let at = |byte: usize, what: String| {
        let position = text[..byte].chars().count() + 1;
        format!("`name` {what} at character {position} of `{text}`")
    };
    let (app_part, rest) = match text.find('{') {
        Some(open) => (&text[..open], Some(open)),
        None => (text, None),
    };
    let app = app_part.trim();
    if app.is_empty() {
        return Err(match rest {
            Some(_) => at(0, "has no application name before `{`".into()),
            None => {
                "`name` is empty: give the application name, e.g. `name=my.app{env=prod}`".into()
            }
        });
    }
    if let Some(bad) = app_part.find(|c: char| "}=,\"".contains(c) || c.is_control()) {
        return Err(at(
            bad,
            format!(
                "has `{}` in the application name",
                app_part[bad..]
                    .chars()
                    .next()
                    .unwrap_or(' ')
                    .escape_default()
            ),
        ));
    }
    let mut labels = BTreeMap::new();
    let Some(open) = rest else {
        return Ok(AppName {
            app: app.to_string(),
            labels,
        });
    };
    let body_start = open + 1;
    let close = text[body_start..]
        .find('}')
        .map(|i| body_start + i)
        .ok_or_else(|| at(text.len(), "has no `}` closing the labels".into()))?;
    if !text[close + 1..].trim().is_empty() {
        return Err(at(close + 1, "has text after the closing `}`".into()));
    }
    let body = &text[body_start..close];
    if body.trim().is_empty() {
        return Ok(AppName {
            app: app.to_string(),
            labels,
        });
    }
    let mut offset = body_start;
    for pair in body.split(',') {
        let start = offset;
        offset += pair.len() + 1;
        let Some(eq) = pair.find('=') else {
            let what = if pair.trim().is_empty() {
                "has an empty label (two commas, or one at the end)".to_string()
            } else {
                format!("label `{}` has no `=value`", pair.trim())
            };
            return Err(at(start, what));
        };
        let key = pair[..eq].trim();
        let value = pair[eq + 1..].trim();
        if !valid_key(key) {
            return Err(at(
                start,
                format!("label key `{key}` is not a name (letters, digits, `_`, `.`; not starting with a digit)"),
            ));
        }
        if key == "service_name" || key.starts_with("__") {
            return Err(at(
                start,
                format!(
                    "label `{key}` is set by the server (the application name is `service_name`)"
                ),
            ));
        }
        if let Some(bad) = pair[eq + 1..].find(['{', '=']) {
            return Err(at(
                start + eq + 1 + bad,
                format!(
                    "label `{key}` has a value with `{}`",
                    &pair[eq + 1 + bad..eq + 2 + bad]
                ),
            ));
        }
        if value.is_empty() {
            return Err(at(
                start + eq + 1,
                format!("label `{key}` has an empty value"),
            ));
        }
        if labels.insert(key.to_string(), value.to_string()).is_some() {
            return Err(at(start, format!("label `{key}` is given twice")));
        }
    }
    Ok(AppName {
        app: app.to_string(),
        labels,
    })
}

/// `[A-Za-z_][A-Za-z0-9_.]*`.
fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Vec<(String, String)>) {
        let name = parse(text).unwrap();
        (name.app, name.labels.into_iter().collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_with_and_without_labels() {
        assert_eq!(ok("my.app.cpu"), ("my.app.cpu".into(), vec![]));
        assert_eq!(ok("my.app.cpu{}"), ("my.app.cpu".into(), vec![]));
        assert_eq!(
            ok("my.awesome.app.cpu{env=staging,region=us-west-1}"),
            (
                "my.awesome.app.cpu".into(),
                pairs(&[("env", "staging"), ("region", "us-west-1")])
            )
        );
        assert_eq!(
            ok(" app { env = prod , k8s.pod=web-1:8080/x } "),
            (
                "app".into(),
                pairs(&[("env", "prod"), ("k8s.pod", "web-1:8080/x")])
            )
        );
    }

    #[test]
    fn errors_say_where() {
        let err = |t| parse(t).unwrap_err();
        assert!(err("").contains("`name` is empty"));
        assert_eq!(
            err("{env=prod}"),
            "`name` has no application name before `{` at character 1 of `{env=prod}`"
        );
        assert_eq!(
            err("app{env=prod"),
            "`name` has no `}` closing the labels at character 13 of `app{env=prod`"
        );
        assert_eq!(
            err("app{env}"),
            "`name` label `env` has no `=value` at character 5 of `app{env}`"
        );
        assert_eq!(
            err("app{a=1,,b=2}"),
            "`name` has an empty label (two commas, or one at the end) at character 9 of `app{a=1,,b=2}`"
        );
        assert!(err("app{a=1,}").contains("empty label"));
        assert!(err("app{a=}").contains("label `a` has an empty value at character 7"));
        assert!(err("app{9x=1}").contains("label key `9x` is not a name"));
        assert!(err("app{a=1,a=2}").contains("label `a` is given twice at character 9"));
        assert!(err("app{a=1}x").contains("text after the closing `}` at character 9"));
        assert!(err("app{service_name=x}").contains("set by the server"));
        assert!(err("app{__name__=x}").contains("set by the server"));
        assert!(err("a=b").contains("has `=` in the application name at character 2"));
        assert!(err("app{a=b=c}").contains("a value with `=` at character 8"));
        // Positions count characters, not bytes.
        assert!(err("äpp{x}").contains("at character 5"));
    }
}
