//! Application names and labels in the conventions of the receivers.
//!
//! A scorch series is labelled `host`, `pid`, `comm`, `exe`, `cgroup` plus
//! the user's `--label`s. Pyroscope names a series by `service_name` (the
//! application) and `__name__` (the profile's kind, `process_cpu` for CPU
//! samples); its push API takes Prometheus-style label names
//! (`[a-zA-Z_][a-zA-Z0-9_]*`), its `/ingest` API takes an application name
//! of `[A-Za-z0-9_./-]` with tags `key=value` whose keys are `[A-Za-z0-9_.]`
//! and whose values end at `,` or `}` (there is no escape). Characters
//! outside those sets become `_`, so a label is never rejected for its
//! spelling.
//!
//! `pid` is not sent, as Grafana Alloy's `pyroscope.ebpf` does not send it
//! (its `__process_pid__` is a hidden label): a series per process
//! lifetime would soon hit a tenant's series limit. It still makes each
//! entry's id distinct, and `--app-name` templates may use it.

use std::collections::BTreeMap;

use crate::Error;

/// `__name__` of CPU profiles, as Pyroscope's and Grafana Alloy's eBPF profilers name them.
pub const PROFILE_NAME: &str = "process_cpu";
/// `spyName` / `pyroscope_spy`: who collected the profile.
pub const SPY_NAME: &str = "scorch";

/// How each process's application name is made: a template over its labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppName {
    /// Literal text and label references; empty means the default rule.
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Label(String),
}

impl AppName {
    /// Parses a template such as `{comm}`, `myapp` or `web-{host}`.
    pub fn parse(template: &str) -> Result<AppName, Error> {
        let error = |reason: &str| Error::Template {
            template: template.to_string(),
            reason: reason.to_string(),
        };
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err(error("`}` without a `{` before it"))
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Text(rest[..i].to_string()));
                    }
                    let close = rest[i..]
                        .find('}')
                        .ok_or_else(|| error("`{` is not closed by `}`"))?;
                    let name = &rest[i + 1..i + close];
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(error("write a label name between braces, e.g. {comm}"));
                    }
                    parts.push(Part::Label(name.to_string()));
                    rest = &rest[i + close + 1..];
                }
                None => {
                    parts.push(Part::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        if parts.is_empty() {
            return Err(error("the name is empty"));
        }
        Ok(AppName { parts })
    }

    /// The application name of a series with `labels`, in `/ingest`'s alphabet.
    ///
    /// Without a template: the `service_name` label if the user set one,
    /// else the executable's file name, else the command name.
    pub fn render(&self, labels: &BTreeMap<String, String>) -> String {
        let raw = if self.parts.is_empty() {
            labels
                .get("service_name")
                .cloned()
                .or_else(|| {
                    labels
                        .get("exe")
                        .and_then(|exe| exe.rsplit('/').next())
                        .filter(|name| !name.is_empty())
                        .map(|name| name.trim_end_matches(" (deleted)").to_string())
                })
                .or_else(|| labels.get("comm").cloned())
                .unwrap_or_default()
        } else {
            self.parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => text.as_str(),
                    Part::Label(name) => labels.get(name).map_or("", String::as_str),
                })
                .collect()
        };
        let name = sanitize(raw.trim(), |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
        });
        if name.is_empty() {
            "unknown".to_string()
        } else {
            name
        }
    }
}

/// The labels of a series as the push APIs (Pyroscope push, Parca) take
/// them, sorted by name: `__name__`, `service_name`, `hostname`, the
/// process labels and the user's labels.
pub fn series_labels(app: &str, labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    label_map(app, labels).into_iter().collect()
}

/// [`series_labels`] plus what Pyroscope's own `/ingest` adds: `__delta__`
/// (`false`: each window stands alone, nothing is to be subtracted) and
/// `pyroscope_spy`.
pub fn pyroscope_labels(app: &str, labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = label_map(app, labels);
    out.insert("__delta__".into(), "false".into());
    out.insert("pyroscope_spy".into(), SPY_NAME.into());
    out.into_iter().collect()
}

/// Labels kept out of uploaded series: one value per process lifetime.
const UNSENT_LABELS: &[&str] = &["pid"];

fn label_map(app: &str, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in sent(labels) {
        let name = if name == "host" { "hostname" } else { name };
        out.insert(prometheus_name(name), value.clone());
    }
    out.insert("__name__".into(), PROFILE_NAME.into());
    out.insert("service_name".into(), app.into());
    out
}

/// `/ingest`'s `name` parameter: `APP{key=value,…}`, keys sorted. The
/// server adds `service_name` (from APP), `pyroscope_spy` and `__delta__`.
pub fn ingest_name(app: &str, labels: &BTreeMap<String, String>) -> String {
    let tags: BTreeMap<String, String> = sent(labels)
        .map(|(name, value)| {
            let name = if name == "host" { "hostname" } else { name };
            let key = sanitize(name, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '.')
            });
            (
                key,
                sanitize(value.trim(), |c| !matches!(c, ',' | '}' | '{')),
            )
        })
        .filter(|(key, value)| {
            !key.is_empty() && !value.is_empty() && !key.starts_with("__") && key != "service_name"
        })
        .collect();
    let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{app}{{{}}}", tags.join(","))
}

/// The labels that go to the server.
fn sent(labels: &BTreeMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    labels
        .iter()
        .filter(|(name, _)| !UNSENT_LABELS.contains(&name.as_str()))
}

/// `name` as a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn prometheus_name(name: &str) -> String {
    let clean = sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_');
    match clean.chars().next() {
        None => "_".to_string(),
        Some(c) if c.is_ascii_digit() => format!("_{clean}"),
        Some(_) => clean,
    }
}

/// `text` with every character `allowed` rejects replaced by `_`.
fn sanitize(text: &str, allowed: impl Fn(char) -> bool) -> String {
    text.chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_app_is_the_executable_name() {
        let app = AppName::default();
        let l = labels(&[("exe", "/usr/sbin/nginx"), ("comm", "nginx: worker")]);
        assert_eq!(app.render(&l), "nginx");
        assert_eq!(
            app.render(&labels(&[("comm", "kworker/0:1")])),
            "kworker/0_1"
        );
        assert_eq!(app.render(&labels(&[])), "unknown");
        let l = labels(&[("exe", "/x/y"), ("service_name", "checkout")]);
        assert_eq!(app.render(&l), "checkout");
    }

    #[test]
    fn templates_substitute_labels() {
        let l = labels(&[("comm", "burn"), ("host", "h1")]);
        assert_eq!(AppName::parse("{comm}").unwrap().render(&l), "burn");
        assert_eq!(AppName::parse("myapp").unwrap().render(&l), "myapp");
        assert_eq!(
            AppName::parse("web-{host}.{comm}").unwrap().render(&l),
            "web-h1.burn"
        );
        assert_eq!(AppName::parse("a b{nope}").unwrap().render(&l), "a_b");
        for bad in ["", "{", "}", "{}", "{a b}", "x{comm"] {
            assert!(AppName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn push_labels_follow_pyroscope() {
        let l = labels(&[
            ("host", "h1"),
            ("pid", "42"),
            ("team.name", "x"),
            ("9x", "y"),
        ]);
        let got = pyroscope_labels("burn", &l);
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "_9x",
                "__delta__",
                "__name__",
                "hostname",
                "pyroscope_spy",
                "service_name",
                "team_name"
            ]
        );
        assert!(got.contains(&("__name__".into(), "process_cpu".into())));
        assert!(got.contains(&("service_name".into(), "burn".into())));
        let parca: Vec<String> = series_labels("burn", &l)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            parca,
            ["_9x", "__name__", "hostname", "service_name", "team_name"]
        );
    }

    #[test]
    fn ingest_names_cannot_be_split_by_values() {
        let l = labels(&[
            ("host", "h1"),
            ("cgroup", "/a,b}c{"),
            ("bad key", " v "),
            ("__x", "1"),
            ("pid", "42"),
        ]);
        assert_eq!(
            ingest_name("app", &l),
            "app{bad_key=v,cgroup=/a_b_c_,hostname=h1}"
        );
    }
}
