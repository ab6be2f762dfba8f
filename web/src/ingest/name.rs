//! Pyroscope's application name with labels: `my.app.cpu{env=prod,region=eu}`.
//!
//! The name runs up to `{`; the labels are `key=value` pairs separated by
//! `,` up to a final `}`. Keys are `[A-Za-z_][A-Za-z0-9_.]*`; values are
//! any text without `,`, `{`, `}` or `=`. Spaces around names, keys and
//! values are dropped. Keys starting with `__` are the server's and are
//! dropped, as Pyroscope drops them. Errors say where in the string the
//! problem is (a 1-based character position).
//!
//! For text profiles (folded, lines) Pyroscope reads the profile type from
//! the name's last dot-separated segment ([`ProfileType::of`]): `my.app.cpu`
//! is application `my.app`, CPU samples; a name without a dot is CPU.

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
        if labels.contains_key(key) {
            return Err(at(start, format!("label `{key}` is given twice")));
        }
        if !key.starts_with("__") {
            labels.insert(key.to_string(), value.to_string());
        }
    }
    Ok(AppName {
        app: app.to_string(),
        labels,
    })
}

/// What the last segment of an application name says the profile is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileType {
    /// CPU samples (`cpu`, `itimer`, or no segment): stored.
    Cpu,
    /// A profile type Pyroscope knows but scorch does not store; the
    /// segment, e.g. `alloc_space`.
    Other(String),
}

/// The profile types Pyroscope names by a suffix, other than CPU. `wall`
/// is one of them: wall-clock samples include time off the CPU, and mixed
/// with CPU samples they would make CPU flame graphs lie.
const OTHER_TYPES: [&str; 23] = [
    "wall",
    "inuse_objects",
    "inuse_space",
    "alloc_objects",
    "alloc_space",
    "goroutines",
    "mutex_count",
    "mutex_duration",
    "block_count",
    "block_duration",
    "alloc_in_new_tlab_objects",
    "alloc_in_new_tlab_bytes",
    "alloc_outside_tlab_objects",
    "alloc_outside_tlab_bytes",
    "lock_count",
    "lock_duration",
    "live",
    "exceptions",
    "seconds",
    "nanoseconds",
    "microseconds",
    "milliseconds",
    "bytes",
];

impl ProfileType {
    /// The application and the profile type of a text profile's name, as
    /// Pyroscope reads them: `my.app.cpu` is `my.app` and CPU, `app` is
    /// CPU; an unknown last segment (`my.app`) is an error, as it is there.
    pub fn of(app: &str) -> Result<(String, ProfileType), String> {
        let Some((service, suffix)) = app.rsplit_once('.') else {
            return Ok((app.to_string(), ProfileType::Cpu));
        };
        let kind = match suffix {
            "cpu" | "itimer" => ProfileType::Cpu,
            known if OTHER_TYPES.contains(&known) => ProfileType::Other(known.to_string()),
            unknown => {
                return Err(format!(
                    "unknown profile type `{unknown}` in `name={app}`: the last `.` segment \
                     of the application name is the profile type, as in Pyroscope; name a \
                     CPU profile `{app}.cpu`"
                ))
            }
        };
        Ok((service.to_string(), kind))
    }
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
    fn service_name_is_kept_and_private_labels_are_dropped() {
        assert_eq!(
            ok("app.cpu{service_name=web,__name__=x,__delta__=false,env=prod}"),
            (
                "app.cpu".into(),
                pairs(&[("env", "prod"), ("service_name", "web")])
            )
        );
    }

    #[test]
    fn profile_types_by_suffix_as_pyroscope_reads_them() {
        assert_eq!(
            ProfileType::of("my.app.cpu"),
            Ok(("my.app".into(), ProfileType::Cpu))
        );
        assert_eq!(
            ProfileType::of("my.app.itimer"),
            Ok(("my.app".into(), ProfileType::Cpu))
        );
        assert_eq!(ProfileType::of("app"), Ok(("app".into(), ProfileType::Cpu)));
        for other in [
            "alloc_space",
            "inuse_objects",
            "goroutines",
            "mutex_count",
            "wall",
        ] {
            let name = format!("my.app.{other}");
            assert_eq!(
                ProfileType::of(&name),
                Ok(("my.app".into(), ProfileType::Other(other.into()))),
                "{other}"
            );
        }
        let err = ProfileType::of("my.app").unwrap_err();
        assert!(err.contains("unknown profile type `app`"), "{err}");
        assert!(ProfileType::of("app.")
            .unwrap_err()
            .contains("unknown profile type ``"));
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
        assert!(err("a=b").contains("has `=` in the application name at character 2"));
        assert!(err("app{a=b=c}").contains("a value with `=` at character 8"));
        // Positions count characters, not bytes.
        assert!(err("äpp{x}").contains("at character 5"));
    }
}
