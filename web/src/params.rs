//! Query-string parameters of the API, parsed and checked before any work.
//!
//! Every endpoint takes a time range (`from`, `until`: ns since the Unix
//! epoch; the last hour by default) and label filters (`label=key:value`,
//! repeatable). Bad values are errors that name the parameter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scorch_formats::Measure;

use crate::error::ApiError;

/// The default range: the last hour.
const DEFAULT_RANGE: Duration = Duration::from_secs(3600);
/// The longest range a request may ask for: a year.
const MAX_RANGE: Duration = Duration::from_secs(366 * 24 * 3600);
/// Most timeline buckets one request may ask for.
pub const MAX_BUCKETS: u64 = 10_000;

/// The parsed query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Range start, ns since the Unix epoch.
    pub from: u64,
    /// Range end, ns since the Unix epoch.
    pub until: u64,
    /// `(key, value)` label filters.
    pub labels: Vec<(String, String)>,
    /// Every other parameter, in order.
    pub rest: Vec<(String, String)>,
}

impl Params {
    /// Parses `query` with `now` as the reference for defaults.
    pub fn parse(query: Option<&str>, now: SystemTime) -> Result<Params, ApiError> {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut from = None;
        let mut until = None;
        let mut labels = Vec::new();
        let mut rest = Vec::new();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "from" => from = Some(parse_ns("from", &value)?),
                "until" => until = Some(parse_ns("until", &value)?),
                "label" => {
                    let (k, v) = value.split_once(':').ok_or_else(|| {
                        ApiError::bad_request(format!("label `{value}` is not `key:value`"))
                    })?;
                    if k.is_empty() {
                        return Err(ApiError::bad_request(format!(
                            "label `{value}` has an empty key"
                        )));
                    }
                    labels.push((k.to_string(), v.to_string()));
                }
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        let until = until.unwrap_or(now_ns);
        let from = from.unwrap_or_else(|| until.saturating_sub(DEFAULT_RANGE.as_nanos() as u64));
        if from >= until {
            return Err(ApiError::bad_request(format!(
                "`from` ({from}) must be before `until` ({until})"
            )));
        }
        if until - from > MAX_RANGE.as_nanos() as u64 {
            return Err(ApiError::bad_request(
                "the range is longer than a year; ask for less",
            ));
        }
        Ok(Params {
            from,
            until,
            labels,
            rest,
        })
    }

    /// `measure`: what the counts are, `cpu` (on-CPU samples, the default)
    /// or `off-cpu` (nanoseconds off CPU).
    pub fn measure(&self) -> Result<Measure, ApiError> {
        match self.get("measure") {
            None | Some("cpu") => Ok(Measure::OnCpuSamples),
            Some("off-cpu") => Ok(Measure::OffCpuNanoseconds),
            Some(other) => Err(ApiError::bad_request(format!(
                "unknown measure `{other}`: use cpu (on-CPU samples) or off-cpu (time off CPU)"
            ))),
        }
    }

    /// The value of parameter `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.rest
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Below this a time is taken as Unix seconds (the form scripts write by
/// hand, `date +%s`), above as nanoseconds: 10^11 s is the year 5138, 10^11
/// ns is 100 s after 1970.
const SECONDS_BELOW: u64 = 100_000_000_000;

fn parse_ns(name: &str, value: &str) -> Result<u64, ApiError> {
    let n: u64 = value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` must be Unix seconds or nanoseconds, not `{value}`"
        ))
    })?;
    Ok(if n < SECONDS_BELOW {
        n.saturating_mul(1_000_000_000)
    } else {
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn defaults_to_the_last_hour() {
        let p = Params::parse(None, at(10_000)).unwrap();
        assert_eq!(
            (p.from, p.until),
            (6_400 * 1_000_000_000, 10_000 * 1_000_000_000)
        );
    }

    #[test]
    fn labels_and_other_parameters() {
        let p = Params::parse(
            Some("from=1&until=5&label=comm:bash&label=pid:7&format=folded"),
            at(0),
        )
        .unwrap();
        // Small values are Unix seconds.
        assert_eq!((p.from, p.until), (1_000_000_000, 5_000_000_000));
        assert_eq!(
            p.labels,
            [("comm".into(), "bash".into()), ("pid".into(), "7".into())]
        );
        assert_eq!(p.get("format"), Some("folded"));
        assert_eq!(p.get("step"), None);
    }

    #[test]
    fn times_in_seconds_or_nanoseconds() {
        let p = Params::parse(Some("from=1700000000&until=1700000060"), at(0)).unwrap();
        assert_eq!(
            (p.from, p.until),
            (1_700_000_000_000_000_000, 1_700_000_060_000_000_000)
        );
        let p = Params::parse(Some("from=1700000000000000000&until=1700000060"), at(0)).unwrap();
        assert_eq!(
            (p.from, p.until),
            (1_700_000_000_000_000_000, 1_700_000_060_000_000_000)
        );
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let err = |q| Params::parse(Some(q), at(100)).unwrap_err().message;
        assert!(err("from=abc").contains("`from`"));
        assert!(err("from=5&until=5").contains("must be before"));
        assert!(err("label=nocolon").contains("key:value"));
        assert!(err("label=:x").contains("empty key"));
        assert!(err("from=0&until=99999999999999999").contains("longer than a year"));
    }

    #[test]
    fn measures() {
        let measure = |q| Params::parse(Some(q), at(100)).unwrap().measure();
        assert_eq!(measure("").unwrap(), Measure::OnCpuSamples);
        assert_eq!(measure("measure=cpu").unwrap(), Measure::OnCpuSamples);
        assert_eq!(
            measure("measure=off-cpu").unwrap(),
            Measure::OffCpuNanoseconds
        );
        let e = measure("measure=wall").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("`wall`"), "{}", e.message);
    }
}
